/**
 * The producer client lives in its own package, packages/client (@fairlane/client, no server
 * code or types); this re-export keeps `src/client` imports (the CLI, tests, benchmarks) working.
 */
export * from "../../packages/client/src/index.ts";
