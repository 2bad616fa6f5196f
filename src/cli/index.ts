#!/usr/bin/env node
/**
 * The Fairlane CLI (`npx fairlane <command>` from a checkout: bin/fairlane.js; `npm run fairlane -- <command>`).
 *   enqueue <file.ndjson>   bulk-enqueue workflows for the API key's tenant
 *   workflows list|get|cancel|wait   a tenant's workflows, by its API key or the admin token (workflowCommands.ts)
 * On-call commands, each a thin client of the admin API (--token, FAIRLANE_ADMIN_TOKEN, or the
 * admin-token file of a local npm start: adminToken.ts; tables by default, --json for scripts):
 *   tenants, tenant <id>, set <id> --mca ..., pause|resume <id>, drain <id> --yes   (tenantCommands.ts)
 *   parked list|requeue|fail                                                      (parkedCommands.ts)
 *   dependency list|down|up|clear <dep>                                           (dependencyCommands.ts)
 *   capacity --window 24h                                                         (capacityCommand.ts)
 *   why <tenant|workflow-id>   what holds its queued work, in one glance            (whyCommand.ts)
 *   reviews, reviewer-key create|list|revoke <pool>   human review queues and keys  (reviewCommands.ts)
 *   orgs, org get|put|delete <org>   organisations: caps over several tenants, live   (orgCommands.ts)
 */
import { Command, InvalidArgumentError } from "commander";
import { enqueueFile } from "./enqueue.ts";
import { registerCapacityCommand } from "./capacityCommand.ts";
import { registerDependencyCommands } from "./dependencyCommands.ts";
import { registerOrgCommands } from "./orgCommands.ts";
import { registerParkedCommands } from "./parkedCommands.ts";
import { registerReviewCommands } from "./reviewCommands.ts";
import { registerTenantCommands } from "./tenantCommands.ts";
import { registerWhyCommand } from "./whyCommand.ts";
import { registerWorkflowCommands } from "./workflowCommands.ts";

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError("must be an integer from 1 to 1000");
  return n;
};

const program = new Command("fairlane").description("Fairlane command line").showHelpAfterError();

program
  .command("enqueue")
  .description("bulk-enqueue an NDJSON file of workflow requests ({type, class?, payload?, idempotencyKey?, deadlineAt?} per line)")
  .argument("<file>", "NDJSON file")
  .option("--url <url>", "API base URL (env FAIRLANE_URL)", process.env.FAIRLANE_URL ?? "http://127.0.0.1:3000")
  .option("--key <key>", "tenant API key (env FAIRLANE_API_KEY)")
  .option("--chunk <n>", "workflows per bulk request (1-1000)", positiveInt, 500)
  .option("--out <file>", "write {line, id} NDJSON for every accepted line")
  .option("--json", "print the summary as JSON on stdout")
  .action(async (file: string, o: { url: string; key?: string; chunk: number; out?: string; json?: boolean }) => {
    // The env var is read here, not as the option's default: commander prints defaults in --help.
    const key = o.key || process.env.FAIRLANE_API_KEY;
    if (!key) program.error("an API key is required: --key or FAIRLANE_API_KEY");
    const s = await enqueueFile(file, { ...o, key: key! });
    if (o.json) process.stdout.write(`${JSON.stringify(s)}\n`);
    else {
      process.stderr.write(
        `${s.accepted} accepted (${s.duplicates} already known by idempotency key), ${s.rejected.length} rejected, of ${s.lines} lines\n`,
      );
      for (const r of s.rejected.slice(0, 50)) process.stderr.write(`  line ${r.line}: ${r.code} ${r.message}\n`);
      if (s.rejected.length > 50) process.stderr.write(`  ... and ${s.rejected.length - 50} more\n`);
    }
    process.exitCode = s.rejected.length ? 2 : 0;
  });

registerWorkflowCommands(program);
registerWhyCommand(program);
registerTenantCommands(program);
registerParkedCommands(program);
registerDependencyCommands(program);
registerCapacityCommand(program);
registerReviewCommands(program);
registerOrgCommands(program);

program.parseAsync().catch((err: Error) => {
  process.stderr.write(`fairlane: ${err.message}\n`);
  process.exit(1);
});
