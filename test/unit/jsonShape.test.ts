import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { jsonShapeIssues, MAX_JSON_DEPTH } from "../../src/admission/jsonShape.ts";
import { canonicalJson, requestHash } from "../../src/admission/requestHash.ts";

const nested = (n: number, inner = "1") => JSON.parse('{"a":'.repeat(n) + inner + "}".repeat(n));
const fields = (v: unknown) => jsonShapeIssues(v).map((i) => i.field);

describe("JSON a workflow request may hold (jsonShape)", () => {
  it("allows 64 levels under the request and names the first level too deep", () => {
    assert.deepEqual(jsonShapeIssues({ type: "x", payload: nested(MAX_JSON_DEPTH) }), []);
    assert.deepEqual(fields({ type: "x", payload: nested(MAX_JSON_DEPTH + 1) }), [`payload${".a".repeat(MAX_JSON_DEPTH)}`]);
    assert.deepEqual(fields({ payload: { list: [[[]]] } }), []);
  });

  it("walks a million levels without recursing (no stack overflow)", () => {
    const deep = JSON.parse("[".repeat(1_000_000) + "]".repeat(1_000_000));
    const issues = jsonShapeIssues({ payload: { x: deep } });
    assert.equal(issues.length, 1);
    assert.match(issues[0]!.message, /deeper than 64 levels/);
    assert.ok(issues[0]!.field.length <= 301, "a long path is shortened");
  });

  it("refuses __proto__ keys and non-finite numbers wherever they are, and nothing else", () => {
    const v = JSON.parse('{"payload":{"a":[1,{"__proto__":{"x":1}}],"n":1e400,"m":-1e400,"constructor":{"prototype":1},"__proto__ ":2}}');
    assert.deepEqual(fields(v), ["payload.a.1.__proto__", "payload.n", "payload.m"]);
  });

  it("stops after the issue limit and shortens long keys in the path", () => {
    const many = JSON.parse(`{"payload":{${Array.from({ length: 50 }, (_, i) => `"k${i}":1e999`).join(",")}}}`);
    assert.equal(jsonShapeIssues(many).length, 10);
    assert.deepEqual(fields({ payload: { ["k".repeat(100)]: Infinity } }), [`payload.${"k".repeat(40)}…`]);
  });
});

describe("the request an idempotency key stands for (requestHash)", () => {
  const base = { type: "t", class: "B" as const, payload: { a: 1, b: [1, { c: 2, d: 3 }] } };

  it("writes object keys in one order, arrays as they are", () => {
    assert.equal(canonicalJson({ b: [2, 1], a: { d: 1, c: 2 } }), '{"a":{"c":2,"d":1},"b":[2,1]}');
  });

  it("is the same for the same request, whatever its key order or deadline notation", () => {
    const reordered = { payload: { b: [1, { d: 3, c: 2 }], a: 1 }, class: "B" as const, type: "t" };
    assert.equal(requestHash(base, undefined), requestHash(reordered, undefined));
    assert.equal(requestHash(base, Date.parse("2030-01-01T00:00:00Z")), requestHash(base, Date.parse("2030-01-01T01:00:00+01:00")));
  });

  it("differs when type, class, payload or deadline differ", () => {
    const h = requestHash(base, undefined);
    for (const other of [
      { ...base, type: "u" },
      { ...base, class: "A" as const },
      { ...base, payload: { a: 2, b: [] } },
    ])
      assert.notEqual(requestHash(other, undefined), h);
    assert.notEqual(requestHash(base, 1), h);
    assert.notEqual(requestHash({ ...base, payload: { a: 1, b: [{ c: 2, d: 3 }, 1] } }, undefined), h, "array order matters");
  });
});
