/**
 * Organisations' paths in the OpenAPI document (src/api/openapi.ts), as src/api/orgs.ts serves them:
 * an org's policy (the request schema is OrgPolicySchema, the one the registry validates with), its
 * tenants, and its live slots against its caps.
 */
import { z } from "zod";
import type { ZodOpenApiPathsObject } from "zod-openapi";
import { TENANT_ID } from "../../queues/names.ts";
import { OrgPolicySchema } from "../tenancy/orgs.ts";
import { err, invalid, json, ok, op } from "./openapiOperation.ts";

const capOrNull = (what: string) =>
  z
    .number()
    .nullable()
    .meta({ description: `${what}; null: the org does not bound it.` });

/** An org's policy as stored and resolved: the request's schema, every default filled. */
export const OrgPolicy = OrgPolicySchema.meta({
  id: "OrgPolicy",
  description: "An org's caps over its tenants together (null: unbounded) and its weight against other orgs and lone tenants.",
});

const Slots = z.object({ A: z.number().int(), BC: z.number().int() }).meta({ id: "OrgSlots" });

export const OrgLive = z
  .object({
    cell: z.string().nullable().meta({ description: "The cell its tenants live in (they share one); null while it has no tenant." }),
    running: Slots.meta({ description: "Slots its tenants hold now, together: Class A, and Class B and C." }),
    byTenant: z.record(z.string(), Slots).meta({ description: "The same, per tenant." }),
    caps: z.object({ mca: capOrNull("Bounds running.BC"), mcaUrgent: capOrNull("Bounds running.A") }),
  })
  .meta({ id: "OrgLive", description: "What the dispatcher holds now, against the org's caps." });

const OrgTenants = z.array(z.string()).meta({ description: "The tenants whose policy names this org." });

export const OrgView = z.object({ org: z.string(), policy: OrgPolicy, tenants: OrgTenants, live: OrgLive }).meta({ id: "OrgView" });
const OrgWritten = z.object({ org: z.string(), policy: OrgPolicy, tenants: OrgTenants }).meta({ id: "OrgWritten" });

const orgPath = z.object({ org: z.string().regex(TENANT_ID).meta({ description: "An org name (the same rule as a tenant id)." }) });
const orgMissing = err("No such org (NOT_FOUND).");

export const orgPaths: ZodOpenApiPathsObject = {
  "/v1/admin/orgs": {
    get: op("admin", "List orgs, their tenants and their live slots against their caps", {
      "200": ok("Every org.", z.object({ orgs: z.array(OrgView) })),
    }),
  },
  "/v1/admin/orgs/{org}": {
    get: op(
      "admin",
      "Read an org: its policy, its tenants and their live slots against its caps",
      { "200": ok("The org.", OrgView), "400": invalid, "404": orgMissing },
      { requestParams: { path: orgPath } },
    ),
    put: op(
      "admin",
      "Create or replace an org's policy",
      { "200": ok("Replaced.", OrgWritten), "201": ok("Created.", OrgWritten), "400": invalid },
      {
        requestParams: { path: orgPath },
        requestBody: { required: true, content: json(OrgPolicy) },
        description:
          "Every cap is optional (null or absent: unbounded). A tenant joins the org with `org` in its policy (PUT or PATCH /v1/admin/tenants/{tenant}); an org's tenants share one cell.",
      },
    ),
    delete: op(
      "admin",
      "Delete an org no tenant belongs to",
      {
        "204": { description: "Deleted." },
        "400": invalid,
        "404": orgMissing,
        "409": err("Tenants still belong to it (ORG_HAS_TENANTS, `details.tenants` names them): move them out first."),
      },
      { requestParams: { path: orgPath } },
    ),
  },
};
