import { randomToken } from "../lib/random.ts";

/** A workflow's id, which is also its job's id: "wf_" and 20 base64url characters, minted at admission. */
export const newWorkflowId = () => `wf_${randomToken(15, "base64url")}`;
export { WORKFLOW_ID } from "../../queues/names.ts";
