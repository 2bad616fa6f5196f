import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { REPO_ROOT } from "../../src/lib/config.ts";

/** Debian's chromium (FAIRLANE_CHROMIUM overrides), installed by ensure-deps.sh when missing. */
export function chromiumPath(): string {
  if (process.env.FAIRLANE_CHROMIUM) return process.env.FAIRLANE_CHROMIUM;
  const find = () => {
    try {
      return execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();
    } catch {
      return "";
    }
  };
  if (!find()) execFileSync("bash", ["src/bin/ensure-deps.sh"], { cwd: REPO_ROOT, stdio: "inherit", env: { ...process.env, FAIRLANE_NEED_CHROMIUM: "1", REDIS_URL: "redis://unused" } });
  const path = find();
  assert.ok(path, "chromium is installed");
  return path;
}

export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"];
