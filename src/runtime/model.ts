/**
 * Model calls under the deadline (seed 001, failure mode 4): stream from a
 * model endpoint with a time box of the remaining deadline minus a reserve
 * for tool dispatch, and cut the stream mid-way when the box runs out — the
 * endpoint sees the connection close. The tenant's model tier picks the
 * token budget; a budget that says "degrade" drops to the cheaper tier.
 */
export interface ModelRequest {
  prompt?: string;
  /** Tokens to ask for; the tier's default when left out. */
  tokens?: number;
  /** Kept back from the time box for the tool calls that follow (default 20% of what is left). */
  reserveMs?: number;
  costUsd?: number;
}

export interface ModelResult {
  text: string;
  tokens: number;
  complete: boolean;
  /** Why it stopped early: the time box ran out, or the workflow's signal fired. */
  cut?: "time_box" | "aborted";
  tier: string;
}

const TIER_TOKENS: Record<string, number> = { small: 20, standard: 40, premium: 80 };
const CHEAPER: Record<string, string> = { premium: "standard", standard: "small", small: "small" };

export function modelTier(policyTier: string, degrade: boolean): string {
  return degrade ? (CHEAPER[policyTier] ?? "small") : policyTier;
}

export function modelTimeBox(remainingMs: number, reserveMs?: number): number {
  const reserve = reserveMs ?? Math.floor(remainingMs * 0.2);
  return Math.max(0, remainingMs - reserve);
}

export async function streamModel(
  url: string,
  req: ModelRequest & { tier: string; signal: AbortSignal; timeBoxMs: number; headers: Record<string, string> },
): Promise<ModelResult> {
  const box = new AbortController();
  const timer = setTimeout(() => box.abort("time_box"), req.timeBoxMs);
  const signal = AbortSignal.any([req.signal, box.signal]);
  let text = "";
  let tokens = 0;
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...req.headers },
      body: JSON.stringify({ tokens: req.tokens ?? TIER_TOKENS[req.tier] ?? 40 }),
      signal,
    });
    if (!res.ok || !res.body) throw new Error(`model endpoint answered ${res.status}`);
    const decoder = new TextDecoder();
    for await (const chunk of res.body) {
      const piece = decoder.decode(chunk as Uint8Array, { stream: true });
      text += piece;
      tokens += piece.split(" ").filter(Boolean).length;
    }
    return { text, tokens, complete: true, tier: req.tier };
  } catch (err) {
    if (signal.aborted) return { text, tokens, complete: false, cut: box.signal.aborted ? "time_box" : "aborted", tier: req.tier };
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
