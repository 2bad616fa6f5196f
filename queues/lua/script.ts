import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ChainableCommander, Redis } from "ioredis";
import { hashSlot } from "../../src/lib/hashSlot.ts";

/**
 * Loads `queues/lua/<name>-<numberOfKeys>.lua` and runs it: `run` as EVALSHA with an
 * EVAL fallback (safe on an auto-pipelined client), `queue` on a pipeline as an ioredis
 * custom command registered by `ensure`. Each script has one typed wrapper next to it;
 * nothing else calls `run`.
 *
 * Redis Cluster safety (DESIGN invariant 5, docs/cluster.md): every call's KEYS
 * must share one hash slot, checked here on every call (also against a single
 * Redis, so any test would catch a script that mixes a cell with the registry
 * or with another cell). Keys a script derives itself are built from a key or
 * prefix of the same cell (`<cell>` / the cell's BullMQ prefix in ARGV), with the key functions
 * generated from queues/keys.ts (includes/keys.lua, `npm run gen:lua`).
 */
const read = (file: string) => readFileSync(fileURLToPath(new URL(`./${file}`, import.meta.url)), "utf8");

/** Inlines `--- @include "name"` lines with includes/<name>.lua, once each (BullMQ's convention). */
function withIncludes(lua: string, seen = new Set<string>()): string {
  return lua.replace(/^--- @include "([A-Za-z]+)"$/gm, (_m, name: string) => {
    if (seen.has(name)) return "";
    seen.add(name);
    return withIncludes(markPrunable(read(`includes/${name}.lua`)), seen);
  });
}

/*
 * An include that has a line `--- @prune-unused` (the generated includes/keys.lua: one function
 * per key of the schema) is a library: each of its one-line definitions (`local function f(...)
 * ... end`, `local X = ...`) is kept only when the rest of the script names it, so a script
 * carries the few key functions it uses rather than all of them (size, and Lua's limit of 200
 * locals per function). Dropping a local nothing names cannot change what a script does.
 */
const PRUNABLE = "\u0000prunable:";
const ONE_LINE_LOCAL = /^local (?:function [A-Za-z_][A-Za-z0-9_]*\(.*\) .* end|[A-Za-z_][A-Za-z0-9_]* = "[^"]*")$/;

function markPrunable(lua: string): string {
  if (!/^--- @prune-unused$/m.test(lua)) return lua;
  return lua
    .replace(/^--- @prune-unused\n?/m, "")
    .split("\n")
    .map((line) => {
      if (!line.startsWith("local ")) return line;
      if (!ONE_LINE_LOCAL.test(line)) throw new Error(`a --- @prune-unused include may only define one-line locals: ${line}`);
      return PRUNABLE + line;
    })
    .join("\n");
}

function pruneUnused(lua: string): string {
  const lines = lua.split("\n");
  const defs = new Map<number, string>(); // line index -> name it defines
  lines.forEach((line, i) => {
    if (line.startsWith(PRUNABLE)) defs.set(i, /^local (?:function )?([A-Za-z_][A-Za-z0-9_]*)/.exec(line.slice(PRUNABLE.length))![1]!);
  });
  const named = (text: string, name: string) => new RegExp(`(?<![A-Za-z0-9_])${name}(?![A-Za-z0-9_])`).test(text);
  // Kept: what the other lines name, then what kept definitions name, until nothing changes.
  let text = lines.filter((_, i) => !defs.has(i)).join("\n");
  const kept = new Set<number>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const [i, name] of defs) {
      if (kept.has(i) || !named(text, name)) continue;
      kept.add(i);
      text += `\n${lines[i]!.slice(PRUNABLE.length).replace(/^local (?:function )?[A-Za-z_][A-Za-z0-9_]*/, "")}`;
      grew = true;
    }
  }
  return lines.flatMap((line, i) => (!defs.has(i) ? [line] : kept.has(i) ? [line.slice(PRUNABLE.length)] : [])).join("\n");
}

/** One of BullMQ's scripts as its package ships it (bullmq/dist/cjs/scripts/<name>-<keys>.js), and its ARGV count. */
export interface BullmqScript {
  content: string;
  keys: number;
  args: number;
}

export class LuaScript {
  readonly command: string;
  private readonly lua: string;
  private readonly sha: string;
  private readonly numberOfKeys: number;
  private readonly defined = new WeakSet<object>();

  /**
   * `around`: one of BullMQ's own scripts (its `content`, includes already inlined, and how many keys
   * and args it takes), composed in unchanged as the function `bullmq()` that this script calls where it
   * wants BullMQ's step; this script's own keys and args follow BullMQ's (KEYS[BULL_KEYS + 1], ARGV[BULL_ARGV + 1]).
   */
  constructor(file: string, around?: BullmqScript) {
    const m = /^([A-Za-z]+)-(\d+)\.lua$/.exec(file);
    if (!m) throw new Error(`lua script ${file} must be named <name>-<numberOfKeys>.lua`);
    this.command = `fl_${m[1]}`;
    this.numberOfKeys = Number(m[2]) + (around?.keys ?? 0);
    const own = pruneUnused(withIncludes(read(file)));
    this.lua = around
      ? `local BULL_KEYS, BULL_ARGV = ${around.keys}, ${around.args}\nlocal function bullmq()\n${around.content}\nend\n${own}`
      : own;
    this.sha = createHash("sha1").update(this.lua).digest("hex");
  }

  /** Registers the command on a client; call before `redis.pipeline()` to use `queue`. */
  ensure(redis: Redis): void {
    if (this.defined.has(redis)) return;
    redis.defineCommand(this.command, { numberOfKeys: this.numberOfKeys, lua: this.lua });
    this.defined.add(redis);
  }

  /**
   * One call: EVALSHA, and EVAL once when Redis does not know the script (first use, or after a
   * restart or SCRIPT FLUSH). Built-in commands rather than the custom command, so a client with
   * auto-pipelining may carry it (ioredis builds each automatic pipeline with the custom commands
   * defined so far: one defined while a pipeline is pending made that pipeline throw).
   */
  async run<T>(redis: Redis, keys: string[], args: (string | number | Buffer)[]): Promise<T> {
    this.check(keys);
    try {
      return (await redis.evalsha(this.sha, this.numberOfKeys, ...keys, ...args)) as T;
    } catch (err) {
      if (!String((err as Error).message).startsWith("NOSCRIPT")) throw err;
      return (await redis.eval(this.lua, this.numberOfKeys, ...keys, ...args)) as T;
    }
  }

  /**
   * One call by EVAL, the script's text on the wire: for a script run rarely whose first run must not wait
   * for the NOSCRIPT round trip (its first use since Redis started is likely its first use at all).
   */
  async evalNow<T>(redis: Redis, keys: string[], args: (string | number | Buffer)[]): Promise<T> {
    this.check(keys);
    return (await redis.eval(this.lua, this.numberOfKeys, ...keys, ...args)) as T;
  }

  /** Queues the script on a pipeline made after `ensure(redis)`. */
  queue(pipeline: ChainableCommander, keys: string[], args: (string | number)[]): void {
    this.check(keys);
    (pipeline as unknown as Record<string, (...a: unknown[]) => unknown>)[this.command]!(...keys, ...args);
  }

  private check(keys: string[]): void {
    if (keys.length !== this.numberOfKeys) throw new Error(`${this.command} takes ${this.numberOfKeys} keys, got ${keys.length}`);
    // Keys with the same hash tag share a slot: compare tags, and hash only the odd one out (a CRC16 of
    // every key on every call was measurable on the hot path).
    const first = keys[0]!;
    const tag = hashTag(first);
    const other = keys.find((k) => !hasTag(k, tag) && hashSlot(k) !== hashSlot(first));
    if (other !== undefined)
      throw new Error(`${this.command}: keys in different hash slots (CROSSSLOT on a Redis Cluster): ${keys[0]} and ${other}`);
  }
}

/** Whether `key` hashes `tag` (hashTag), compared in place: no slice of every key on every call. */
function hasTag(key: string, tag: string): boolean {
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) return close - open - 1 === tag.length && key.startsWith(tag, open + 1);
  }
  return key === tag;
}

/** What Redis Cluster hashes: the first non-empty `{...}` of the key, else the whole key. */
function hashTag(key: string): string {
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) return key.slice(open + 1, close);
  }
  return key;
}
