/**
 * CPU-bound result processing that must not run on the exec worker's event
 * loop (seed 001: one tenant parsing a large clinical-notes JSON stalls every
 * other tenant's tool calls on the same loop).
 *
 * These are pure, synchronous functions with no imports, so the worker thread
 * (`cpuWorker.ts`) and the inline path (`runInline` in `cpuPool.ts`) run the
 * very same code and always agree on the result. Inputs arrive untyped (they
 * cross a thread boundary by structured clone), so every task validates its own.
 */

export interface ParseAndSummariseInput {
  /** JSON text: `{ "notes": [{ "text": string, ... }, ...] }`. */
  json: string;
}

export interface TermCount {
  term: string;
  count: number;
}

export interface ParseAndSummariseResult {
  notes: number;
  /** Tokens counted (stop words and tokens shorter than 3 characters excluded). */
  tokens: number;
  distinctTerms: number;
  /** The 20 most frequent terms, most frequent first; ties by term, ascending. */
  topTerms: TermCount[];
}

const TOP_N = 20;
const MIN_TOKEN_LENGTH = 3;
const STOP_WORDS: ReadonlySet<string> = new Set(
  (
    "the and for with was were are has had have not but this that from per " +
    "patient pt his her she him they them their its all any who denies reports noted " +
    "today will would should been into than then there these those also"
  ).split(" "),
);

/** Lower-cased runs of letters and digits; "B12" and "b12" are the same term. */
const TOKEN = /[\p{L}\p{N}]+/gu;

export function parseAndSummarise(input: unknown): ParseAndSummariseResult {
  const json = (input as Partial<ParseAndSummariseInput> | null)?.json;
  if (typeof json !== "string") throw new TypeError("parse-and-summarise: input.json must be a string");
  const doc = JSON.parse(json) as { notes?: unknown };
  if (!Array.isArray(doc?.notes)) throw new TypeError("parse-and-summarise: expected { notes: [...] }");

  const counts = new Map<string, number>();
  let tokens = 0;
  for (const note of doc.notes as unknown[]) {
    const text = (note as { text?: unknown } | null)?.text;
    if (typeof text !== "string") continue;
    for (const match of text.toLowerCase().matchAll(TOKEN)) {
      const term = match[0];
      if (term.length < MIN_TOKEN_LENGTH || STOP_WORDS.has(term)) continue;
      counts.set(term, (counts.get(term) ?? 0) + 1);
      tokens++;
    }
  }

  const topTerms = [...counts]
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, TOP_N)
    .map(([term, count]) => ({ term, count }));
  return { notes: doc.notes.length, tokens, distinctTerms: counts.size, topTerms };
}

/** Every task by name. Add a task here and it runs both in the pool and inline. */
export const cpuTasks = {
  "parse-and-summarise": parseAndSummarise,
} as const satisfies Record<string, (input: unknown) => unknown>;

export type CpuTaskName = keyof typeof cpuTasks;

/** Runs a task by name; the name is checked because it may come from another thread. */
export function runCpuTask(task: CpuTaskName, input: unknown): unknown {
  if (!Object.hasOwn(cpuTasks, task)) throw new TypeError(`unknown CPU task: ${String(task)}`);
  return cpuTasks[task](input);
}
