/**
 * Fairlane's layers, checked by dependency-cruiser (`npm run lint:layers`, and `npm test` right after
 * the typecheck). The layers read as the data flow, bottom to top; a module may import its own layer
 * and the ones below it, never one above (docs/architecture.md). Tests (test/) are not checked: they
 * may reach any layer.
 *
 *   dev tools    src/dev/topology/                                           runs the roles as the production layout
 *   roles        workers/, src/platform.ts, src/bootstrap.ts                  wire everything, one role per entrypoint
 *   dev          src/dev/ (simulated downstream, examples, embedded Redis;     development only: no product layer imports it
 *                the scripts in src/dev/bin/ are not modules)
 *   edge         src/api/, src/cli/, src/client/ + packages/client/
 *   read models  src/usage/ (usage snapshot, rollups, history, sampler, cap     what the dashboard and reports show
 *                state, noisy neighbours, capacity report), dashboard/
 *   exec         src/exec/                                                    the exec worker and the run
 *   admission    src/admission/                                               validate, idempotency, enqueue
 *   workflows    src/workflows/                                               definitions registry, records, lists, explain
 *   runtime      src/runtime/, src/agents/                                    ctx, tool gate, budget, retry, agents
 *   dispatch     src/dispatch/ (not policy/), src/backpressure/              dispatch loop; health, park, recover
 *   instruments  src/observability/ (logger, metrics, metrics endpoint, tracing, tenant label)
 *   policy       src/dispatch/policy/                                         pure functions: no Redis
 *   tenancy      src/tenancy/
 *   queues       queues/ (keys, names, Lua wrappers, job data and usage-event contracts)
 *   lib          src/lib/
 */

/** The application's modules (everything but test/, bin/ and dist/). */
const APP = "^(src|queues|workers|dashboard|packages/client)/";

/** Bottom to top. `path`: regular expressions over paths relative to the checkout. */
const LAYERS = [
  { name: "lib", path: ["^src/lib/"] },
  { name: "queues", path: ["^queues/"] },
  { name: "tenancy", path: ["^src/tenancy/"] },
  { name: "policy", path: ["^src/dispatch/policy/"] },
  { name: "instruments", path: ["^src/observability/"] },
  { name: "dispatch", path: ["^src/dispatch/(?!policy/)", "^src/backpressure/"] },
  { name: "runtime", path: ["^src/runtime/", "^src/agents/"] },
  { name: "workflows", path: ["^src/workflows/"] },
  { name: "admission", path: ["^src/admission/"] },
  { name: "exec", path: ["^src/exec/"] },
  { name: "read models", path: ["^src/usage/", "^dashboard/"] },
  { name: "edge", path: ["^src/api/", "^src/cli/", "^src/client/", "^packages/client/"] },
  { name: "dev", path: ["^src/dev/(?!topology/)"] },
  { name: "roles", path: ["^workers/", "^src/platform\\.ts$", "^src/bootstrap\\.ts$"] },
  { name: "dev tools", path: ["^src/dev/topology/"] },
];

/**
 * Known upward imports, each to be removed by its owner: the one edge `from` -> `to` (regular
 * expressions) is let through; every other import of `from` is still checked.
 */
const EXCEPTIONS = [];

const ruleName = (layer) => `layer-${layer.name.replace(/ /g, "-")}`;
const comment = (i) =>
  `${LAYERS[i].name} imports only its own layer and the ones below it, never ${LAYERS.slice(i + 1)
    .map((l) => l.name)
    .join(", ")} (.dependency-cruiser.cjs, docs/architecture.md)`;
const upward = LAYERS.slice(0, -1).flatMap((layer, i) => {
  const above = LAYERS.slice(i + 1).flatMap((l) => l.path);
  const own = EXCEPTIONS.filter((e) => e.layer === layer.name);
  return [
    {
      name: ruleName(layer),
      comment: comment(i),
      severity: "error",
      from: { path: layer.path, pathNot: own.map((e) => e.from) },
      to: { path: above },
    },
    ...own.map((e) => ({
      name: ruleName(layer),
      comment: `${comment(i)}; known exception: ${e.from} -> ${e.to}`,
      severity: "error",
      from: { path: e.from },
      to: { path: above, pathNot: e.to },
    })),
  ];
});

module.exports = {
  forbidden: [
    ...upward,
    {
      name: "layer-unassigned",
      comment:
        "every module of the application belongs to a layer: add a new folder to LAYERS in .dependency-cruiser.cjs (and docs/architecture.md)",
      severity: "error",
      from: { path: APP, pathNot: LAYERS.flatMap((l) => l.path) },
      to: {},
    },
    {
      name: "policy-is-pure",
      comment:
        "scheduling policy is pure functions over a snapshot (no Redis, no clock of its own): it imports only itself and queues/keys.ts",
      severity: "error",
      from: { path: LAYERS[3].path },
      to: { path: [APP, "(^|/)node_modules/(ioredis|bullmq)/"], pathNot: [...LAYERS[3].path, "^queues/keys\\.ts$"] },
    },
    {
      name: "admission-exec-through-queues",
      comment: "admission and exec meet only through the queues: the job contract is queues/jobData.ts, the record queues/keys.ts",
      severity: "error",
      from: { path: "^src/exec/" },
      to: { path: "^src/admission/" },
    },
    {
      name: "edge-api-cli-apart",
      comment: "the CLI talks to the api over HTTP (src/client), so neither imports the other",
      severity: "error",
      from: { path: "^src/(api|cli)/" },
      to: { path: "^src/(api|cli)/", pathNot: "^src/$1/" },
    },
    {
      name: "standalone-client",
      comment: "the producer client (packages/client, published on its own, and src/client re-exporting it) imports nothing of the server",
      severity: "error",
      from: { path: ["^packages/client/", "^src/client/"] },
      to: { path: APP, pathNot: "^packages/client/" },
    },
    {
      name: "standalone-downstream",
      comment: "the simulated downstream service stands apart from the platform: it imports src/lib only",
      severity: "error",
      from: { path: "^src/dev/downstream/" },
      to: { path: APP, pathNot: ["^src/dev/downstream/", "^src/lib/"] },
    },
    {
      name: "not-to-test",
      comment: "application code never imports test code",
      severity: "error",
      from: { path: APP },
      to: { path: "^test/" },
    },
    {
      name: "no-circular",
      comment: "no import cycles (a cycle has no bottom: neither side can be understood or tested first)",
      severity: "error",
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)dist/" },
    // `import type` counts: a type-only import is still a dependency on the layer that defines the type.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
