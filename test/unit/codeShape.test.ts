import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/**
 * The product's code stays in small pieces (docs/contributing.md): no file over about 300 lines and no
 * function over 80, in src/, queues/, workers/, dashboard/ and the client package. Generated code
 * (queues/lua/includes/keys.lua) is left out; tests and the benchmark harness are not product code.
 * On failure the message lists every file or function over its bound, with its length.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const DIRS = ["src", "queues", "workers", "dashboard", "packages/client/src"];
const GENERATED = new Set(["queues/lua/includes/keys.lua"]);
/** "About 300": a file a few lines over (a long schema header, a script's KEYS/ARGV table) passes. */
const MAX_FILE_LINES = 320;
const MAX_FUNCTION_LINES = 80;

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return name === "node_modules" || name === "dist" ? [] : sources(path);
    return /\.(ts|js|lua)$/.test(name) && !name.endsWith(".d.ts") ? [path] : [];
  });
}

const files = DIRS.flatMap(sources).filter((f) => !GENERATED.has(f));

/** Every function-like node of a TypeScript or JavaScript file longer than the bound, as "file:line name (n lines)". */
function longFunctions(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (n: ts.Node) => {
    if (ts.isFunctionLike(n) && "body" in n && n.body) {
      const from = sf.getLineAndCharacterOfPosition(n.getStart()).line;
      const lines = sf.getLineAndCharacterOfPosition(n.getEnd()).line - from + 1;
      if (lines > MAX_FUNCTION_LINES) out.push(`${file}:${from + 1} ${n.name?.getText() ?? "(anonymous)"} (${lines} lines)`);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

describe("the shape of the code", () => {
  it("finds the product's source files", () => {
    assert.ok(files.length > 100, `only ${files.length} files found under ${DIRS.join(", ")}`);
  });

  it(`keeps every product file at ${MAX_FILE_LINES} lines or fewer`, () => {
    const long = files
      .map((f) => ({ f, lines: readFileSync(join(ROOT, f), "utf8").split("\n").length - 1 }))
      .filter((x) => x.lines > MAX_FILE_LINES)
      .map((x) => `${relative(ROOT, join(ROOT, x.f))} (${x.lines} lines)`);
    assert.deepEqual(long, [], `split these by responsibility:\n${long.join("\n")}`);
  });

  it(`keeps every function at ${MAX_FUNCTION_LINES} lines or fewer`, () => {
    const long = files.filter((f) => !f.endsWith(".lua")).flatMap(longFunctions);
    assert.deepEqual(long, [], `split these into named steps:\n${long.join("\n")}`);
  });
});
