import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomToken } from "../../src/lib/random.ts";

describe("randomToken (pooled random ids)", () => {
  it("gives tokens of the asked size and alphabet, never the same twice across many pool refills", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const t = randomToken(15, "base64url");
      assert.match(t, /^[A-Za-z0-9_-]{20}$/);
      seen.add(t);
    }
    assert.equal(seen.size, 20_000);
    const hex = randomToken(8, "hex");
    assert.match(hex, /^[0-9a-f]{16}$/);
  });

  it("draws every byte value about evenly (no stuck or zeroed pool)", () => {
    const counts = new Array(256).fill(0);
    for (let i = 0; i < 4_096; i++) for (const b of Buffer.from(randomToken(16, "hex"), "hex")) counts[b]++;
    // 65,536 bytes: 256 per value on average; a zeroed or repeated pool would pile them on a few values.
    assert.ok(Math.min(...counts) > 150 && Math.max(...counts) < 380, `${Math.min(...counts)}..${Math.max(...counts)}`);
  });
});
