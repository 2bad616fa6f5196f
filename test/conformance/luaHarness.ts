import { readFileSync } from "node:fs";

/**
 * A test-only Lua harness (test/conformance/*.harness.lua) for EVAL, with its
 * `--- @include "name"` lines inlined from queues/lua/includes/ once each, as
 * queues/lua/script.ts does for the real scripts. A harness calls an include's
 * functions directly, for generated cases too many to set up through the
 * script that uses them.
 */
const read = (url: URL) => readFileSync(url, "utf8");

function withIncludes(lua: string, seen = new Set<string>()): string {
  return lua.replace(/^--- @include "([A-Za-z]+)"$/gm, (_m, name: string) => {
    if (seen.has(name)) return "";
    seen.add(name);
    return withIncludes(read(new URL(`../../queues/lua/includes/${name}.lua`, import.meta.url)), seen);
  });
}

export function harnessLua(file: string): string {
  return withIncludes(read(new URL(`./${file}`, import.meta.url)));
}
