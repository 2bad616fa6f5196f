import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { changesSince } from "../../queues/lua/writePolicy.ts";

describe("the registry's change log", () => {
  it("names each tenant and org written between two versions, once", () => {
    assert.deepEqual(changesSince(["8 t clinic", "9 o acme", "10 t clinic", "11 t lab"], 7, 11), {
      tenants: ["clinic", "lab"],
      orgs: ["acme"],
    });
  });

  it("asks for a whole read when it does not hold every version in between", () => {
    assert.equal(changesSince(["9 t lab", "10 t clinic"], 7, 10), null, "trimmed: version 8 is gone");
    assert.equal(changesSince(["8 t lab", "10 t clinic"], 7, 10), null, "a write that logged nothing (9: a seed)");
    assert.equal(changesSince(["8 t lab"], 7, 9), null);
    assert.equal(changesSince(["8 t lab"], 7, 7), null, "nothing to catch up");
    assert.equal(changesSince(["8 x lab"], 7, 8), null, "not an entry it knows");
  });
});
