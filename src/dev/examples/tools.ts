import { httpTool } from "../../runtime/httpTool.ts";

/**
 * The example workflows' tools: calls to a FHIR-gateway-like service (the
 * simulated downstream under `npm start`, FAIRLANE_DOWNSTREAM_URL), all on
 * the dependency "fhir-gateway". The URL is read per call, so a process can
 * point them elsewhere at start.
 */
export const FHIR_RESOURCES = [
  "eligibility",
  "clinical-notes",
  "formulary",
  "payer-rules",
  "demographics",
  "coverage",
  "prior-auth-history",
  "lab-results",
  "medications",
];

const base = () => process.env.FAIRLANE_DOWNSTREAM_URL ?? "http://127.0.0.1:4100";

for (const resource of [...FHIR_RESOURCES, "prior-auth-submit", "discharge-write"]) {
  httpTool<Record<string, unknown>>({
    name: resource,
    dependency: "fhir-gateway",
    costUsd: 0.0005,
    timeoutMs: 10_000,
    url: (args) => `${base()}/fhir/${resource}${args.latencyMs === undefined ? "" : `?latencyMs=${Number(args.latencyMs)}`}`,
  });
}
