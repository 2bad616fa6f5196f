/**
 * Reads pipeline replies (`[error, value]`, as `pipeline().exec()` and SlotPipeline give them) in the
 * order the commands were queued: each call returns the next value, and throws the next error.
 */
export function replyCursor(replies: readonly [Error | null, unknown][]): () => unknown {
  let i = 0;
  return () => {
    const [err, v] = replies[i++] ?? [new Error("missing reply"), null];
    if (err) throw err;
    return v;
  };
}
