import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeCursor,
  encodeCursor,
  type ListEntry,
  type ListPosition,
  listMember,
  memberEntry,
  newestFirst,
  sourceBounds,
  streamEntry,
} from "../../src/workflows/listIndex.ts";

/**
 * The run list's order and cursors (src/workflows/listIndex.ts), played against a model of Redis's
 * ranges: every source's entries strictly after a cursor, as XREVRANGE and ZRANGE BYLEX REV would
 * return them with the bounds it computes, must be exactly the entries after the cursor in the order.
 */
const A = "wf_AAAAAAAAAAAAAAAAAAAA";
const B = "wf_BBBBBBBBBBBBBBBBBBBB";

/** An entry ID "<ms>-<seq>" as a comparable pair. */
const streamId = (s: string): [number, bigint] => {
  const [ms, seq] = s.split("-");
  return [Number(ms), BigInt(seq ?? "0")];
};

/** The entries of a stream XREVRANGE max min returns (max/min as Redis reads them: "+", "-", "<ms>", "<ms>-<seq>"). */
function xrevrange(entries: ListEntry[], max: string, min: string): ListEntry[] {
  const hi = max === "+" ? [Infinity, 2n ** 64n] : max === "-" ? [-1, 0n] : max.includes("-") ? streamId(max) : [Number(max), 2n ** 64n];
  const lo = min === "-" ? [-1, 0n] : min === "+" ? [Infinity, 0n] : min.includes("-") ? streamId(min) : [Number(min), 0n];
  const le = (a: [number, bigint], b: (number | bigint)[]) => a[0] < (b[0] as number) || (a[0] === b[0] && a[1] <= (b[1] as bigint));
  const ge = (a: [number, bigint], b: (number | bigint)[]) => a[0] > (b[0] as number) || (a[0] === b[0] && a[1] >= (b[1] as bigint));
  return entries.filter((e) => le(streamId(e.pos), hi) && ge(streamId(e.pos), lo));
}

/** The members ZRANGE BYLEX REV max min returns. */
function zrevbylex(entries: ListEntry[], max: string, min: string): ListEntry[] {
  const below = (m: string) => max === "+" || (max.startsWith("(") ? m < max.slice(1) : m <= max.slice(1));
  const above = (m: string) => min === "-" || (min.startsWith("(") ? m > min.slice(1) : m >= min.slice(1));
  return max === "-" ? [] : entries.filter((e) => below(e.pos) && above(e.pos));
}

describe("run-list order and cursors", () => {
  const t = 1_796_000_000_000;
  // Two cells, each with its run list and its index as written before; ties in one ms across all four.
  const entries: ListEntry[] = [
    streamEntry("default", `${t}-0`, A),
    streamEntry("default", `${t}-1`, B),
    streamEntry("default", `${t + 1}-0`, A),
    streamEntry("eu", `${t}-0`, B),
    streamEntry("eu", `${t - 5}-3`, A),
    memberEntry("default", listMember(t, A))!,
    memberEntry("default", listMember(t, B))!,
    memberEntry("default", listMember(t - 1, A))!,
    memberEntry("eu", listMember(t, A))!,
  ];
  const ordered = [...entries].sort(newestFirst);
  const read = (after: ListPosition | undefined, since?: number) =>
    entries
      .filter((e) => {
        const [max, min] = sourceBounds(e.kind, e.source, after, since);
        const same = entries.filter((x) => x.source === e.source);
        return (e.kind === "runs" ? xrevrange(same, max, min) : zrevbylex(same, max, min)).includes(e);
      })
      .sort(newestFirst);

  it("orders newest first, then by source, then by place in it", () => {
    assert.equal(ordered[0]!.pos, `${t + 1}-0`);
    assert.deepEqual(
      ordered.map((e) => e.ms),
      entries.map((e) => e.ms).sort((a, b) => b - a),
    );
    assert.ok(newestFirst(streamEntry("default", `${t}-2`, A), streamEntry("default", `${t}-10`, A)) > 0, "seq 10 before seq 2");
  });

  it("reads from every source exactly the entries after a cursor, at each place in the order", () => {
    assert.deepEqual(read(undefined), ordered);
    ordered.forEach((at, i) => {
      assert.deepEqual(read(at), ordered.slice(i + 1), `after ${at.source} ${at.pos}`);
      assert.deepEqual(read(decodeCursor(encodeCursor(at))), ordered.slice(i + 1), "the same through its cursor");
    });
  });

  it("bounds by time with `since`", () => {
    assert.deepEqual(
      read(undefined, t),
      ordered.filter((e) => e.ms >= t),
    );
    assert.deepEqual(
      read(ordered[2], t - 1),
      ordered.slice(3).filter((e) => e.ms >= t - 1),
    );
  });

  it("takes a cursor from before 2026-12-05 (the member a page stopped at): the index goes on below it, the run list below its ms", () => {
    const old = Buffer.from(listMember(t, B)).toString("base64url");
    const at = decodeCursor(old)!;
    assert.equal(at.legacy, true);
    assert.deepEqual(
      read(at).map((e) => `${e.source} ${e.pos}`),
      ordered.filter((e) => (e.kind === "wfs" ? e.pos < listMember(t, B) : e.ms < t)).map((e) => `${e.source} ${e.pos}`),
    );
  });

  it("reads nothing below the first entry ID there can be", () => {
    assert.deepEqual(sourceBounds("runs", "runs:default", { ms: 0, source: "runs:default", tie: "0".repeat(20) }, undefined), ["-", "+"]);
  });

  it("refuses what it did not write", () => {
    for (const c of [
      "bm90LWEtY3Vyc29y",
      Buffer.from('[1,"runs:default","12"]').toString("base64url"),
      Buffer.from("{}").toString("base64url"),
    ])
      assert.equal(decodeCursor(c), undefined, c);
  });
});
