import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { APICallError, generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";
import type { Downstream, DownstreamOptions } from "../../src/dev/downstream/simulator.ts";
import { waitFor, withDownstream } from "../helpers/downstream.ts";

/**
 * The simulated downstream's OpenAI-compatible model, driven by the real
 * Vercel AI SDK over real HTTP: the agent policy's plan, its back-off on
 * THROTTLED results, streaming, usage, the API key and the down switch.
 */
const KEY = "sk-sim-test";

/** A fresh simulated downstream that wants the test's API key. */
const withKeyedDownstream = (opts: Partial<DownstreamOptions>, body: (ds: Downstream) => Promise<void>) =>
  withDownstream({ llmApiKey: KEY, ...opts }, body);

function model(ds: Downstream, apiKey = KEY, id = "sim-standard") {
  return createOpenAICompatible({ name: "sim", baseURL: `${ds.url}/v1`, apiKey, includeUsage: true })(id);
}

/** Asserts that `p` rejects with the SDK's API error for HTTP `status`. */
async function rejectsWithStatus(p: Promise<unknown>, status: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(APICallError.isInstance(err), `expected an APICallError, got ${String(err)}`);
    assert.equal(err.statusCode, status);
    return true;
  });
}

const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

describe("simulated downstream: OpenAI-compatible chat completions", () => {
  it("runs a generateText agent through fanout × rounds tool calls, then answers with a decision", async () => {
    await withKeyedDownstream({}, async (ds) => {
      const members: unknown[] = [];
      let notified = 0;
      const result = await generateText({
        model: model(ds),
        system: "You check prior-authorisation requests. fanout=3 rounds=2",
        prompt: "Check member M-1 and notify the clinic.",
        tools: {
          lookupMember: tool({
            description: "Look a member up",
            inputSchema: z.object({ memberId: z.string(), year: z.number().int(), urgent: z.boolean(), plan: z.enum(["gold", "silver"]) }),
            execute: async (input) => {
              members.push(input);
              return { status: "OK" };
            },
          }),
          notifyClinic: tool({
            description: "Notify the clinic",
            inputSchema: z.object({}),
            execute: async () => {
              notified++;
              return "sent";
            },
          }),
        },
        stopWhen: stepCountIs(10),
        headers: { "x-tenant-id": "meridian" },
        maxRetries: 0,
      });
      // Plan i = 0..5 alternates the two tools; three calls per step.
      assert.equal(members.length + notified, 6);
      assert.deepEqual([members.length, notified], [3, 3]);
      assert.deepEqual(members[0], { memberId: "sim-0", year: 0, urgent: true, plan: "gold" }, "arguments come from the tool's schema");
      assert.deepEqual(
        result.steps.map((s) => s.toolCalls.map((c) => c.toolCallId)),
        [["call_0_0", "call_1_0", "call_2_0"], ["call_3_1", "call_4_1", "call_5_1"], []],
      );
      assert.match(result.text, /^decision: approve/);
      assert.equal(result.finishReason, "stop");

      await waitFor("every answer to be counted completed", () => ds.stats().llm.completed === 3);
      const s = ds.stats().llm;
      assert.deepEqual(
        [s.requests, s.streamed, s.streamsCut, s.toolCallsEmitted, s.maxToolCallsInOneResponse, s.unauthorized, s.refusedDown, s.invalid],
        [3, 0, 0, 6, 3, 0, 0, 0],
      );
      assert.deepEqual(s.toolCallsPerResponse, [3, 3, 0]);
      assert.deepEqual(s.byModel, { "sim-standard": 3 });
      assert.deepEqual(s.byTenant, { meridian: 3 });
    });
  });

  it("narrows to the THROTTLED result's parallelism, doubles the width back, and reissues refused calls (streamed)", async () => {
    await withKeyedDownstream({}, async (ds) => {
      let calls = 0;
      const succeeded: string[] = [];
      const result = streamText({
        model: model(ds),
        prompt: "Fetch every record. fanout=4 rounds=2",
        tools: {
          fetchRecord: tool({
            description: "Fetch one record",
            inputSchema: z.object({ ref: z.string() }),
            execute: async ({ ref }) => {
              // The first two calls find the dependency saturated.
              if (++calls <= 2) return { status: "THROTTLED", retryAfterMs: 0, parallelism: 1 };
              succeeded.push(ref);
              return { status: "OK", ref };
            },
          }),
        },
        stopWhen: stepCountIs(10),
        maxRetries: 0,
      });
      const steps = await result.steps;
      // 4 at once; two refused -> 1; then 2, then the 3 left; then the answer.
      assert.deepEqual(
        steps.map((s) => s.toolCalls.length),
        [4, 1, 2, 3, 0],
      );
      assert.match(await result.text, /^decision: approve/);
      assert.deepEqual(
        succeeded.sort(),
        ["sim-0", "sim-1", "sim-2", "sim-3", "sim-4", "sim-5", "sim-6", "sim-7"],
        "every planned call succeeds once",
      );
      await waitFor("every stream to be counted completed", () => ds.stats().llm.completed === 5);
      const s = ds.stats().llm;
      assert.deepEqual(s.toolCallsPerResponse, [4, 1, 2, 3, 0]);
      assert.deepEqual([s.requests, s.streamed, s.toolCallsEmitted, s.maxToolCallsInOneResponse, s.streamsCut], [5, 5, 10, 4, 0]);
    });
  });

  it("stops streaming tokens when the client aborts, and counts the stream cut", async () => {
    await withKeyedDownstream({}, async (ds) => {
      const controller = new AbortController();
      // 200 tokens at 10 ms: about two seconds of stream if it were never cut.
      const result = streamText({
        model: model(ds),
        prompt: "Decide. answerTokens=200 tokenMs=10",
        abortSignal: controller.signal,
        maxRetries: 0,
      });
      // The clock starts at the first token, so a slow start on a busy machine cannot abort before the stream exists.
      let timer: NodeJS.Timeout | undefined;
      let received = 0;
      try {
        for await (const delta of result.textStream) {
          if (delta.length > 0) received++;
          timer ??= setTimeout(() => controller.abort(), 300);
        }
      } catch {
        /* an aborted stream may end by throwing; the count is what matters */
      } finally {
        clearTimeout(timer);
      }
      assert.ok(received >= 1 && received < 200, `${received} tokens arrived; expected some, not all 200`);
      await waitFor("the cut to be counted", () => ds.stats().llm.streamsCut === 1);
      const s = ds.stats().llm;
      assert.deepEqual([s.requests, s.streamed, s.completed, s.streamsCut], [1, 1, 0, 1]);
    });
  });

  it("reports usage for generated and streamed answers, and honours x-sim-* headers over the prompt", async () => {
    await withKeyedDownstream({}, async (ds) => {
      const generated = await generateText({ model: model(ds), prompt: "Decide now. answerTokens=5", maxRetries: 0 });
      assert.equal(generated.text, "decision: approve token1 token2 token3");
      assert.ok((generated.usage.inputTokens ?? 0) > 0);
      assert.equal(generated.usage.outputTokens, 5);

      const streamed = streamText({
        model: model(ds),
        prompt: "Decide now. answerTokens=5",
        headers: { "x-sim-answer-tokens": "3" },
        maxRetries: 0,
      });
      assert.equal(await streamed.text, "decision: approve token1");
      const usage = await streamed.usage;
      assert.ok((usage.inputTokens ?? 0) > 0);
      assert.equal(usage.outputTokens, 3);
      assert.equal(await streamed.finishReason, "stop");
    });
  });

  it("answers a wrong or missing API key 401 in OpenAI's error shape and counts it unauthorized", async () => {
    await withKeyedDownstream({}, async (ds) => {
      await rejectsWithStatus(generateText({ model: model(ds, "sk-wrong"), prompt: "hello", maxRetries: 0 }), 401);
      const r = await postJson(`${ds.url}/v1/chat/completions`, { model: "sim-standard", messages: [{ role: "user", content: "hi" }] });
      assert.equal(r.status, 401);
      const body = (await r.json()) as { error: { message: string; type: string; code: string } };
      assert.equal(body.error.code, "invalid_api_key");
      assert.equal(typeof body.error.message, "string");
      const s = ds.stats().llm;
      assert.deepEqual([s.requests, s.unauthorized, s.toolCallsPerResponse.length], [2, 2, 0]);
    });
  });

  it("answers 503 while switched down by /admin/llm, and serves again once switched back", async () => {
    await withKeyedDownstream({}, async (ds) => {
      assert.equal((await postJson(`${ds.url}/admin/llm`, { down: true })).status, 200);
      await rejectsWithStatus(generateText({ model: model(ds), prompt: "hello", maxRetries: 0 }), 503);
      assert.equal(ds.stats().llm.refusedDown, 1);
      assert.equal((await postJson(`${ds.url}/admin/llm`, { down: false })).status, 200);
      assert.match((await generateText({ model: model(ds), prompt: "hello", maxRetries: 0 })).text, /^decision: approve/);
      const s = ds.stats().llm;
      assert.deepEqual([s.requests, s.refusedDown, s.toolCallsPerResponse.length], [2, 1, 1]);
    });
  });

  it("refuses a non-JSON or cross-site /admin/llm write, and POST /admin/reset zeroes the chat counters", async () => {
    await withKeyedDownstream({}, async (ds) => {
      const form = await fetch(`${ds.url}/admin/llm`, { method: "POST", headers: { "content-type": "text/plain" }, body: '{"down":true}' });
      assert.equal(form.status, 403);
      assert.equal((await postJson(`${ds.url}/admin/llm`, { down: true }, { "sec-fetch-site": "cross-site" })).status, 403);
      assert.equal((await postJson(`${ds.url}/admin/llm`, { down: "yes" })).status, 400, "a malformed switch changes nothing");
      assert.match((await generateText({ model: model(ds), prompt: "hello", maxRetries: 0 })).text, /^decision: approve/, "still up");

      assert.equal(ds.stats().llm.requests, 1);
      assert.equal((await postJson(`${ds.url}/admin/reset`, {})).status, 200);
      const s = ds.stats().llm;
      assert.deepEqual([s.requests, s.completed, s.toolCallsPerResponse, s.byModel], [0, 0, [], {}]);
    });
  });

  it("answers malformed requests 400 in OpenAI's error shape and lists its models", async () => {
    await withKeyedDownstream({}, async (ds) => {
      const auth = { authorization: `Bearer ${KEY}` };
      for (const body of [{ messages: [{ role: "user", content: "hi" }] }, { model: "sim-standard", messages: [] }]) {
        const r = await postJson(`${ds.url}/v1/chat/completions`, body, auth);
        assert.equal(r.status, 400);
        assert.equal(((await r.json()) as { error: { type: string } }).error.type, "invalid_request_error");
      }
      const badHeader = await postJson(
        `${ds.url}/v1/chat/completions`,
        { model: "sim-standard", messages: [{ role: "user", content: "hi" }] },
        { ...auth, "x-sim-fanout": "many" },
      );
      assert.equal(badHeader.status, 400);
      assert.equal(ds.stats().llm.invalid, 3);

      const models = (await (await fetch(`${ds.url}/v1/models`, { headers: auth })).json()) as { data: { id: string }[] };
      assert.ok(models.data.some((m) => m.id === "sim-standard"));
    });
  });
});
