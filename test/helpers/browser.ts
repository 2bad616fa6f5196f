import assert from "node:assert/strict";
import { chromium, type Browser, type Page } from "playwright-core";
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
  if (!find())
    execFileSync("bash", ["src/dev/bin/ensure-deps.sh"], {
      cwd: REPO_ROOT,
      stdio: "inherit",
      env: { ...process.env, FAIRLANE_NEED_CHROMIUM: "1", REDIS_URL: "redis://unused" },
    });
  const path = find();
  assert.ok(path, "chromium is installed");
  return path;
}

export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"];

/**
 * Headless Chromium with a page that has the admin's Basic credentials (user "oncall"), collecting
 * console errors and uncaught page errors in `errors`.
 */
export async function adminPage(
  token: string,
  viewport = { width: 1500, height: 950 },
): Promise<{ browser: Browser; page: Page; errors: string[] }> {
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
  const context = await browser.newContext({ httpCredentials: { username: "oncall", password: token }, viewport });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  return { browser, page, errors };
}
