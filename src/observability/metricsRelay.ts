import type { ChildProcess } from "node:child_process";
import { AggregatorRegistry, type Registry } from "prom-client";
import { registry } from "./metrics.ts";

/**
 * One /metrics for processes that run as one: `npm start`'s exec processes (src/dev/execChildren.ts)
 * hand their metrics to the process that started them over its IPC channel, and that process's
 * /metrics serves the sum (prom-client's AggregatorRegistry, as its `cluster` support does: counters
 * and histograms add up, each gauge by its own `aggregator`).
 */

type Metrics = Awaited<ReturnType<Registry["getMetricsAsJSON"]>>;
type Ask = { type: "metrics"; id: number };
type Answer = { type: "metrics"; id: number; metrics: Metrics };

let children: (() => Promise<Metrics[]>) | undefined;

/** The parent: where the other processes' metrics come from (each answer within its timeout, or left out). */
export function setChildMetrics(fn: (() => Promise<Metrics[]>) | undefined): void {
  children = fn;
}

/** This process's metrics in the Prometheus text format, its children's added. */
export async function renderMetrics(): Promise<string> {
  if (!children) return registry.metrics();
  const [own, others] = await Promise.all([registry.getMetricsAsJSON(), children()]);
  return AggregatorRegistry.aggregate([own, ...others]).metrics();
}

let asked = 0;

/** The parent asks one child; undefined when it does not answer within `timeoutMs` (a scrape never hangs on it). */
export function askMetrics(child: ChildProcess, timeoutMs: number): Promise<Metrics | undefined> {
  if (!child.connected) return Promise.resolve(undefined);
  const id = ++asked;
  return new Promise((resolve) => {
    const done = (m: Metrics | undefined) => {
      clearTimeout(timer);
      child.off("message", onMessage);
      resolve(m);
    };
    const onMessage = (msg: Answer) => {
      if (msg?.type === "metrics" && msg.id === id) done(msg.metrics);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    child.on("message", onMessage);
    child.send({ type: "metrics", id } satisfies Ask, (err) => err && done(undefined));
  });
}

/** The child: answers its parent's requests with this process's metrics. */
export function answerMetrics(): void {
  process.on("message", (msg: Ask) => {
    if (msg?.type !== "metrics" || !process.connected) return;
    void registry.getMetricsAsJSON().then((metrics) => {
      if (process.connected) process.send?.({ type: "metrics", id: msg.id, metrics } satisfies Answer);
    });
  });
}
