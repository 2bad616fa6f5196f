import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isLocalUrl, tokenFiles } from "../../src/cli/adminToken.ts";

describe("the CLI's local admin-token discovery", () => {
  it("treats only loopback addresses and names as this machine", () => {
    for (const u of ["http://127.0.0.1:3000", "http://localhost:3000", "http://[::1]:3000", "http://127.8.9.10"])
      assert.ok(isLocalUrl(u), u);
    // A remote name that merely starts like a loopback address must never get the local token.
    for (const u of ["http://127.0.0.1.attacker.example", "http://127.evil.com:3000", "https://fairlane.example", "not a url"])
      assert.ok(!isLocalUrl(u), u);
  });

  it("looks only in FAIRLANE_DATA_DIR when it is set", () => {
    assert.deepEqual(tokenFiles({ FAIRLANE_DATA_DIR: "/srv/fl" }, "/home/x"), ["/srv/fl/admin-token"]);
    const defaults = tokenFiles({}, "/home/x");
    assert.equal(defaults.length, 2);
    assert.ok(defaults.every((f) => f.endsWith("/.fairlane/admin-token")));
    assert.ok(defaults.includes("/home/x/.fairlane/admin-token"));
  });
});
