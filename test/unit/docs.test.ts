import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { openApiDocument } from "../../src/api/openapi.ts";

/**
 * The docs say only what exists. README.md and every markdown page under docs/ are read; each
 * environment variable they name must be read somewhere in the code, each `METHOD /path` they
 * name must be a route of the OpenAPI document (or one of the pages listed below), and each
 * relative link must reach a file (and, for a markdown page, a heading). On failure the message
 * lists every miss with the file and line that names it.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Where a variable must be read for it to exist: code, not docs. */
const CODE_DIRS = ["src", "workers", "queues", "dashboard", "test/bench", "test/drill", "test/soak", "packages/client/src"];
const CODE_EXT = /\.(ts|js|mjs|sh)$/;

/** Variables outside the FAIRLANE_ prefix that the docs may name; checked like the others. */
const OTHER_VARS = ["REDIS_URL", "REDIS_CLUSTER_NODES", "PORT", "HOST", "LOG_LEVEL"];

/**
 * Routes that are not API operations, so not in the OpenAPI document, written as the docs write them:
 * - the api's own pages: the dashboard, Bull Board, the OpenAPI document and its rendering
 *   (src/api/apiDocs.ts, dashboard/);
 * - the simulated downstream's routes (src/dev/downstream/simulator.ts, its `switch (key)` and /fhir/).
 */
const NON_API_ROUTES = new Set([
  "GET /dashboard",
  "GET /admin/queues",
  "GET /docs",
  "GET /openapi.json",
  // the simulated downstream
  "GET /health",
  "POST /model/stream",
  "POST /admin/outage",
  "POST /admin/failure-rate",
  "GET /admin/stats",
  "POST /admin/reset",
  "GET /fhir/{resource}",
  "POST /v1/chat/completions",
  "GET /v1/models",
  "POST /admin/llm",
  "POST /fhir/{resource}",
]);

/** README.md and every markdown file under docs/ (the generated benchmark and soak reports too). */
function markdownFiles(): string[] {
  const files = [join(ROOT, "README.md")];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(".md")) files.push(path);
    }
  };
  walk(join(ROOT, "docs"));
  return files;
}

function codeText(): string {
  const parts: string[] = [];
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      if (name === "node_modules" || name === "dist") continue;
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (CODE_EXT.test(name)) parts.push(readFileSync(path, "utf8"));
    }
  };
  for (const d of CODE_DIRS) walk(join(ROOT, d));
  return parts.join("\n");
}

interface Mention {
  what: string;
  where: string;
}

/** Every match of `re` (global) in every file, with file:line. */
function mentions(files: string[], re: RegExp, pick: (m: RegExpExecArray) => string | null): Mention[] {
  const out: Mention[] = [];
  for (const file of files) {
    readFileSync(file, "utf8")
      .split("\n")
      .forEach((line, i) => {
        for (const m of line.matchAll(re)) {
          const what = pick(m as RegExpExecArray);
          if (what !== null) out.push({ what, where: `${relative(ROOT, file)}:${i + 1}` });
        }
      });
  }
  return out;
}

function report(title: string, missing: Mention[]): string {
  const byWhat = new Map<string, string[]>();
  for (const m of missing) byWhat.set(m.what, [...(byWhat.get(m.what) ?? []), m.where]);
  return `${title}:\n${[...byWhat].map(([what, where]) => `  ${what}  (${where.join(", ")})`).join("\n")}`;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const h = !fenced && /^#{1,6}\s+(.*)$/.exec(line);
    if (!h) continue;
    const slug = h[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    let s = slug;
    for (let n = 1; out.has(s); n++) s = `${slug}-${n}`;
    out.add(s);
  }
  return out;
}

const DOCS = markdownFiles();

describe("the documentation names only what exists", () => {
  it("every environment variable the docs name is read by the code", () => {
    const code = codeText();
    // Case-sensitive: "host:port" in prose is no variable; FAIRLANE_KEY_<TENANT> is matched as its prefix.
    const names = new RegExp(`\\b(FAIRLANE_[A-Z0-9_]*[A-Z0-9]|FAIRLANE_KEY_|${OTHER_VARS.join("|")})\\b`, "g");
    const vars = mentions(DOCS, names, (m) => m[1]!);
    assert.ok(vars.length > 50, `expected the docs to name many variables, found ${vars.length}`);
    const tenants = Object.keys(
      (parseYaml(readFileSync(join(ROOT, "src/tenancy/tenants.example.yaml"), "utf8")) as { tenants: Record<string, unknown> }).tenants,
    ).map((t) => t.toUpperCase().replace(/-/g, "_"));
    const missing = vars.filter(({ what }) => {
      // Dev keys are named at run time, FAIRLANE_KEY_<TENANT> (src/bootstrap.ts), for the example tenants.
      if (what.startsWith("FAIRLANE_KEY_")) {
        const tenant = what.slice("FAIRLANE_KEY_".length);
        return !code.includes("`FAIRLANE_KEY_${") || (tenant !== "" && !tenants.includes(tenant));
      }
      return !new RegExp(`\\b${what}\\b`).test(code);
    });
    if (missing.length) assert.fail(report("Documented environment variables that no code reads", missing));
  });

  it("every route the docs name is in the OpenAPI document or is a known page", () => {
    const doc = openApiDocument() as { paths: Record<string, Record<string, unknown>> };
    const routes = new Set<string>(NON_API_ROUTES);
    for (const [path, ops] of Object.entries(doc.paths))
      for (const method of Object.keys(ops)) routes.add(`${method.toUpperCase()} ${path}`);
    const named = mentions(DOCS, /\b(GET|POST|PUT|PATCH|DELETE) (\/[A-Za-z0-9_.:{}/-]*)/g, (m) => {
      const path = m[2]!.replace(/:([A-Za-z]\w*)/g, "{$1}").replace(/(.)\/$/, "$1");
      return `${m[1]} ${path}`;
    });
    assert.ok(named.length > 40, `expected the docs to name many routes, found ${named.length}`);
    const missing = named.filter(({ what }) => !routes.has(what));
    if (missing.length) assert.fail(report("Documented routes that are neither in the OpenAPI document nor a known page", missing));
  });

  it("every relative link between the pages reaches a file and its heading", () => {
    const missing: Mention[] = [];
    const links = mentions(DOCS, /\]\(([^)\s]+)\)/g, (m) => m[1]!);
    for (const { what, where } of links) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(what)) continue; // http:, https:, mailto:
      const file = join(ROOT, where.slice(0, where.lastIndexOf(":")));
      const [target, anchor] = what.split("#") as [string, string | undefined];
      const path = target === "" ? file : resolve(dirname(file), target);
      if (!existsSync(path)) {
        missing.push({ what, where });
        continue;
      }
      if (anchor !== undefined && path.endsWith(".md") && !anchors(readFileSync(path, "utf8")).has(anchor)) missing.push({ what, where });
    }
    assert.ok(links.length > 30, `expected many links, found ${links.length}`);
    if (missing.length) assert.fail(report("Links to a missing file or heading", missing));
  });

  it("the README stays a front page and links every page under docs/", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const lines = readme.split("\n").length;
    assert.ok(lines <= 150, `README.md has ${lines} lines; keep it to the front page (at most 150) and move the rest to docs/`);
    const pages = DOCS.filter((f) => f !== join(ROOT, "README.md") && !f.endsWith(join("docs", "README.md"))).map((f) => relative(ROOT, f));
    const unlinked = pages.filter((p) => !readme.includes(`](${p})`) && !readme.includes(`](${p}#`));
    assert.deepEqual(unlinked, [], `pages under docs/ that README.md does not link: ${unlinked.join(", ")}`);
  });
});
