import { readFileSync } from "node:fs";
import { type Command, InvalidArgumentError } from "commander";
import { parse } from "yaml";
import { formatPairs, formatTable } from "./table.ts";
import { clientOf, nonNegNumber, print, run, withOperatorOptions, type OperatorOptions } from "./operatorOptions.ts";

/**
 * Organisations, for on call (docs/operations.md "Organisations"): an org's caps bound its tenants together,
 * so a tenant under its own mca can still wait because its org is at its cap.
 * fairlane orgs                        every org: running B+C and A against its caps, its tenants (GET /v1/admin/orgs)
 * fairlane org get <org>               one org, and each tenant's slots against its own caps (GET /v1/admin/orgs/:org,
 *                                      GET /v1/admin/tenants)
 * fairlane org put <org> --file f      create or replace its policy from a JSON or YAML file (PUT /v1/admin/orgs/:org)
 * fairlane org put <org> --mca 40 ...  or from flags: only the fields given change (the others keep the org's
 *                                      values; a new org starts unbounded); `none` lifts a cap
 * fairlane org delete <org>            an org no tenant belongs to (DELETE /v1/admin/orgs/:org; 409 otherwise)
 */
/** What GET /v1/admin/orgs answers per org (src/api/orgs.ts); the CLI knows the API by HTTP only. */
interface Slots {
  A: number;
  BC: number;
}
interface OrgView {
  org: string;
  policy: {
    weight: number;
    mca: number | null;
    mcaUrgent: number | null;
    mctc: number | null;
    budget: { monthlyUsd: number | null };
    description?: string;
  };
  tenants: string[];
  live: { cell: string | null; running: Slots; byTenant: Record<string, Slots>; caps: { mca: number | null; mcaUrgent: number | null } };
}

const cap = (x: number | null) => (x === null ? "–" : String(x));

/** "AT CAP" when the org's tenants together hold its mca (B+C) or mcaUrgent (A), else "ok". */
export function orgState(o: OrgView): string {
  const { running, caps } = o.live;
  const at = [caps.mca !== null && running.BC >= caps.mca && "MCA", caps.mcaUrgent !== null && running.A >= caps.mcaUrgent && "Class A"];
  const which = at.filter(Boolean).join(", ");
  return which ? `AT CAP (${which})` : "ok";
}

export function orgRows(orgs: OrgView[]): string {
  if (!orgs.length) return "no orgs\n";
  return formatTable(
    ["ORG", "STATE", "WEIGHT", "RUN B+C/MCA", "RUN A/MCA-URGENT", "TENANTS"],
    orgs.map((o) => [
      o.org,
      orgState(o),
      o.policy.weight,
      `${o.live.running.BC}/${cap(o.policy.mca)}`,
      `${o.live.running.A}/${cap(o.policy.mcaUrgent)}`,
      o.tenants.join(", ") || "–",
    ]),
    [false, false, true, true, true, false],
  );
}

interface TenantCaps {
  tenant: string;
  policy: { mca: number; mcaUrgent: number };
}

/** One org: its policy and totals, then each tenant's slots against its own caps. */
export function orgDetail(o: OrgView, tenants: TenantCaps[]): string {
  const p = o.policy;
  const head = formatPairs([
    ["org", o.org],
    ...(p.description ? [["description", p.description] as [string, string]] : []),
    ["state", orgState(o)],
    ["weight", p.weight],
    ["running B+C / mca", `${o.live.running.BC} / ${cap(p.mca)}`],
    ["running A / mcaUrgent", `${o.live.running.A} / ${cap(p.mcaUrgent)}`],
    ["mctc", cap(p.mctc)],
    ["budget per month", p.budget.monthlyUsd === null ? "–" : `$${p.budget.monthlyUsd}`],
    ["cell", o.live.cell ?? "– (no tenants)"],
  ]);
  if (!o.tenants.length) return `${head}\nno tenants: a tenant joins with "org": "${o.org}" in its policy\n`;
  const own = new Map(tenants.map((t) => [t.tenant, t.policy]));
  const rows = o.tenants.map((t) => {
    const s: Slots = o.live.byTenant[t] ?? { A: 0, BC: 0 };
    const p = own.get(t);
    return [t, `${s.BC}/${p ? p.mca : "–"}`, `${s.A}/${p ? p.mcaUrgent : "–"}`];
  });
  return `${head}\n${formatTable(["TENANT", "RUN B+C/OWN MCA", "RUN A/OWN MCA-URGENT"], rows, [false, true, true])}`;
}

/**
 * A cap flag: a positive integer (or, for mcaUrgent, 0), or `none` for no bound. `none` stays a word until
 * flagsPatch: commander turns a parser's null into "".
 */
type Cap = number | "none";
const capFlag =
  (min: number) =>
  (v: string): Cap => {
    if (v === "none") return "none";
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`must be an integer >= ${min}, or none`);
    return n;
  };
const usdFlag = (v: string): Cap => (v === "none" ? "none" : nonNegNumber(v));

interface PutFlags {
  file?: string;
  mca?: Cap;
  mcaUrgent?: Cap;
  weight?: number;
  mctc?: Cap;
  monthlyUsd?: Cap;
  description?: string;
}

/** The fields the flags give, as a partial org policy (`none`: null, no bound). */
export function flagsPatch(o: PutFlags): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  const value = (x: Cap) => (x === "none" ? null : x);
  for (const k of ["mca", "mcaUrgent", "mctc"] as const) if (o[k] !== undefined) patch[k] = value(o[k]);
  if (o.weight !== undefined) patch.weight = o.weight;
  if (o.description !== undefined) patch.description = o.description;
  if (o.monthlyUsd !== undefined) patch.budget = { monthlyUsd: value(o.monthlyUsd) };
  return patch;
}

function readPolicyFile(path: string): Record<string, unknown> {
  const doc: unknown = parse(readFileSync(path, "utf8"));
  if (doc === null || typeof doc !== "object" || Array.isArray(doc))
    throw new InvalidArgumentError(`${path}: must hold one org policy (an object: mca, mcaUrgent, weight, ...)`);
  return doc as Record<string, unknown>;
}

export function registerOrgCommands(program: Command): void {
  withOperatorOptions(program.command("orgs").description("list orgs: running B+C and A against their caps, and their tenants")).action(
    run(async (o: OperatorOptions) => {
      const d = await clientOf(o).call<{ orgs: OrgView[] }>("GET", "/v1/admin/orgs");
      print(o, d, () => orgRows(d.orgs));
    }),
  );

  const org = program.command("org").description("organisations: caps over several tenants together");
  const path = (name: string) => `/v1/admin/orgs/${encodeURIComponent(name)}`;

  withOperatorOptions(org.command("get").description("one org: its caps, its tenants and their live slots").argument("<org>")).action(
    run(async (name: string, o: OperatorOptions) => {
      const client = clientOf(o);
      const d = await client.call<OrgView>("GET", path(name));
      if (o.json) return print(o, d, () => "");
      const { tenants } = await client.call<{ tenants: TenantCaps[] }>("GET", "/v1/admin/tenants");
      print(o, d, () => orgDetail(d, tenants));
    }),
  );

  registerOrgPut(org, path);

  withOperatorOptions(org.command("delete").description("delete an org no tenant belongs to").argument("<org>")).action(
    run(async (name: string, o: OperatorOptions) => {
      await clientOf(o).call("DELETE", path(name));
      print(o, { org: name, deleted: true }, () => `${name}: deleted\n`);
    }),
  );
}

/** fairlane org put <org> --file f | --mca ... */
function registerOrgPut(org: Command, path: (name: string) => string): void {
  withOperatorOptions(
    org
      .command("put")
      .description("create or replace an org's policy: --file (the whole policy), or flags (only those fields change)")
      .argument("<org>"),
  )
    .option("--file <path>", "the policy, JSON or YAML (flags given too override its fields)")
    .option("--mca <n>", "Class B + C its tenants may run together (none: unbounded)", capFlag(1))
    .option("--mca-urgent <n>", "Class A its tenants may run together (none: unbounded)", capFlag(0))
    .option("--weight <n>", "its share of a pool against other orgs and lone tenants", nonNegNumber)
    .option("--mctc <n>", "tool calls its tenants may have in flight together (none: unbounded)", capFlag(1))
    .option("--monthly-usd <usd>", "what its tenants may spend together in a month (none: unbounded)", usdFlag)
    .option("--description <text>", "what the org is")
    .action(
      run(async (name: string, o: OperatorOptions & PutFlags) => {
        const patch = flagsPatch(o);
        if (!o.file && !Object.keys(patch).length) {
          process.stderr.write("fairlane: nothing to write: give --file, or at least one of --mca, --mca-urgent, --weight, ...\n");
          process.exitCode = 2;
          return;
        }
        const client = clientOf(o);
        const base = o.file ? readPolicyFile(o.file) : await currentPolicy(client, path(name));
        const budget = patch.budget ? { ...(base.budget as object), ...(patch.budget as object) } : base.budget;
        const policy = { ...base, ...patch, ...(budget === undefined ? {} : { budget }) };
        const d = await client.call("PUT", path(name), policy);
        const p = d.policy;
        print(
          o,
          d,
          () =>
            `${name}: mca ${cap(p.mca)}, mcaUrgent ${cap(p.mcaUrgent)}, mctc ${cap(p.mctc)}, weight ${p.weight}, ` +
            `budget ${p.budget.monthlyUsd === null ? "–" : `$${p.budget.monthlyUsd}`}/month; ${d.tenants.length} tenants\n`,
        );
      }),
    );
}

/** The org's policy now, to change only the flags' fields; {} for an org that does not exist yet. */
async function currentPolicy(client: ReturnType<typeof clientOf>, path: string): Promise<Record<string, unknown>> {
  try {
    return (await client.call<OrgView>("GET", path)).policy;
  } catch (err) {
    if ((err as { status?: number }).status === 404) return {};
    throw err;
  }
}
