import { FairlaneApiError, FairlaneClient, systemClock, type ListQuery, type Workflow, type WorkflowPage } from "../client/index.ts";
import { waitUntilEnded, type WaitOptions } from "../../packages/client/src/wait.ts";
import { AdminApiError } from "./adminClient.ts";
import { clientOf, type OperatorOptions } from "./operatorOptions.ts";

/**
 * Where `fairlane workflows ...` reads a workflow from, by the credential given:
 *   a tenant API key (--api-key, FAIRLANE_API_KEY)  the producer routes, through the
 *                                                   client package: that tenant's workflows only
 *   the admin token (operatorOptions.ts)             GET /v1/admin/workflows?tenant= and
 *                                                   /v1/admin/workflows/:id: any tenant's
 * --tenant asks for the admin routes (a key already names its tenant). There is no
 * admin cancel of one workflow: cancelling needs the tenant's key.
 */
export interface WorkflowOptions extends OperatorOptions {
  apiKey?: string;
  tenant?: string;
}

export interface WorkflowSource {
  /** "tenant key" or "admin token", for messages. */
  via: string;
  list(q: ListQuery): Promise<WorkflowPage>;
  get(id: string): Promise<Workflow>;
  cancel(id: string): Promise<Workflow>;
  wait(id: string, o: WaitOptions): Promise<Workflow>;
}

export function workflowSource(o: WorkflowOptions): WorkflowSource {
  // Read here, never as an option default: commander prints defaults in --help.
  const apiKey = o.apiKey || process.env.FAIRLANE_API_KEY || undefined;
  if (apiKey && !o.tenant) {
    const c = new FairlaneClient({ baseUrl: o.url, apiKey });
    const unreachable = <T>(p: Promise<T>) =>
      p.catch((err: unknown) => {
        // fetch's own "fetch failed" says nothing: name the URL, like the admin client.
        if (err instanceof TypeError) throw new AdminApiError(0, "UNREACHABLE", `cannot reach ${o.url}: ${err.cause ?? err.message}`);
        throw err;
      });
    return {
      via: "tenant key",
      list: (q) => unreachable(c.list(q)),
      get: (id) => unreachable(c.get(id)),
      cancel: (id) => unreachable(c.cancel(id)),
      wait: (id, w) => unreachable(c.wait(id, w)),
    };
  }
  const admin = clientOf(o);
  const get = (id: string) => admin.call<Workflow>("GET", `/v1/admin/workflows/${encodeURIComponent(id)}`);
  return {
    via: "admin token",
    async list(q) {
      if (!o.tenant)
        throw new AdminApiError(
          0,
          "NO_TENANT",
          "with the admin token, say whose workflows: --tenant <tenant> (or give the tenant's --api-key)",
        );
      const params = new URLSearchParams({ tenant: o.tenant });
      for (const [k, v] of Object.entries(q)) if (v !== undefined) params.set(k, String(v));
      return admin.call<WorkflowPage>("GET", `/v1/admin/workflows?${params}`);
    },
    get,
    async cancel() {
      throw new AdminApiError(
        0,
        "NO_API_KEY",
        "cancelling a workflow needs its tenant's API key (--api-key or FAIRLANE_API_KEY); an admin can drain a tenant's queued work: fairlane drain <tenant>",
      );
    },
    wait: (id, w) => waitUntilEnded(id, () => get(id).catch(asApiError), systemClock, w),
  };
}

// The wait loop waits out a 429 or 503 only when it sees the client's own error type.
const asApiError = (err: unknown): never => {
  if (err instanceof AdminApiError && err.status) throw new FairlaneApiError(err.status, err.code, err.message, err.details);
  throw err;
};
