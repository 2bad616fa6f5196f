/** The example workflows `npm start` runs out of the box (and their tools). */
import "./tools.ts";
import "./priorAuth.ts";
import "./eligibilityCheck.ts";
import "./dischargeSummary.ts";
import "./priorAuthAgent.ts";
