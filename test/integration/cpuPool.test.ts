import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { CpuPool, runInline } from "../../src/runtime/cpuPool.ts";
import type { ParseAndSummariseResult } from "../../src/runtime/cpuTasks.ts";

/**
 * CpuPool against real worker threads running the TypeScript worker module
 * through the tsx loader the threads inherit. No timing assertions: the abort
 * case only needs a task long enough to still be running a few ms after it
 * starts, and a generous spawn timeout only guards against a hung child.
 */

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const WORDS = (
  "metformin insulin hba1c glucose hypertension lisinopril creatinine dyspnea edema " +
  "echocardiogram ejection fraction wound dressing sepsis lactate antibiotic ceftriaxone mri " +
  "lumbar radiculopathy physiotherapy authorization denied approved follow-up referral"
).split(" ");

/** A deterministic clinical-notes document of about `notes` × 600 bytes. */
function notesJson(notes: number, seed = 7): string {
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pick = () => WORDS[Math.floor(next() ** 2 * WORDS.length)] ?? "note"; // skewed: some terms dominate
  return JSON.stringify({
    notes: Array.from({ length: notes }, (_, i) => ({
      id: `n${i}`,
      patientId: `p${i % 97}`,
      text: `${Array.from({ length: 80 }, pick).join(" ")}. The patient denies chest pain.`,
    })),
  });
}

describe("CpuPool", () => {
  const pool = new CpuPool({ maxThreads: 2 });
  after(() => pool.destroy());

  it("returns the same summary from a worker thread as running the task inline", async () => {
    const input = { json: notesJson(2_000) };
    const offloaded = await pool.run<ParseAndSummariseResult>("parse-and-summarise", input);
    const inline = runInline<ParseAndSummariseResult>("parse-and-summarise", input);
    assert.deepEqual(offloaded, inline);
    assert.equal(offloaded.notes, 2_000);
    assert.equal(offloaded.topTerms.length, 20);
    assert.ok(offloaded.topTerms.every((t, i, all) => i === 0 || (all[i - 1]?.count ?? 0) >= t.count));
    assert.ok(!offloaded.topTerms.some((t) => t.term === "the" || t.term === "patient"), "stop words excluded");
  });

  it("rejects with the worker's error when the input is invalid", async () => {
    await assert.rejects(pool.run("parse-and-summarise", { json: 42 }), /input\.json must be a string/);
  });

  it("rejects an aborted task with an AbortError and keeps working afterwards", async () => {
    const input = { json: notesJson(10_000) };
    await assert.rejects(pool.run("parse-and-summarise", input, AbortSignal.abort("cancelled")), { name: "AbortError" });

    await pool.run("parse-and-summarise", { json: notesJson(1) }); // a thread is up and idle
    const controller = new AbortController();
    const running = pool.run("parse-and-summarise", input, controller.signal);
    setTimeout(() => controller.abort("cancelled"), 5);
    await assert.rejects(running, (error: Error) => {
      assert.equal(error.name, "AbortError");
      assert.equal(error.cause, "cancelled");
      return true;
    });

    const after = await pool.run<ParseAndSummariseResult>("parse-and-summarise", { json: notesJson(10) });
    assert.equal(after.notes, 10);
  });

  it("leaves no threads after destroy() and refuses further tasks", async () => {
    const own = new CpuPool({ maxThreads: 2 });
    const input = { json: notesJson(200) };
    await Promise.all([own.run("parse-and-summarise", input), own.run("parse-and-summarise", input)]);
    assert.ok(own.threads >= 1);
    await own.destroy();
    assert.equal(own.threads, 0);
    await assert.rejects(own.run("parse-and-summarise", input), /destroyed/);
  });

  it("lets a process that used and destroyed a pool exit by itself", () => {
    const script = `
      import { CpuPool } from "./src/runtime/cpuPool.ts";
      const pool = new CpuPool({ maxThreads: 2, idleTimeoutMs: 3_600_000 });
      const json = JSON.stringify({ notes: [{ text: "insulin glucose insulin" }] });
      const results = await Promise.all([1, 2, 3].map(() => pool.run("parse-and-summarise", { json })));
      await pool.destroy();
      console.log(JSON.stringify({ top: results[0].topTerms[0], threads: pool.threads }));`;
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: REPO,
      encoding: "utf8",
      timeout: 60_000, // only a guard against a hang: exiting by itself takes well under a second
    });
    assert.equal(child.signal, null, `child was killed (hung?): ${child.stderr}`);
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), { top: { term: "insulin", count: 2 }, threads: 0 });
  });
});
