/**
 * A run's model steps against its tier's limit (`policy.deadline.maxIterations`;
 * seed 001: free 2, professional 5, enterprise 10). The AI SDK adapter counts
 * each model request here; a hand-written agent loop asks `next()` before each
 * reasoning step. The count is per run: a workflow resumed after preemption or
 * parking starts again at 0, and its durable steps skip the work already done.
 */
export class IterationBudget {
  private count = 0;
  constructor(readonly limit: number) {}

  get used(): number {
    return this.count;
  }

  get left(): number {
    return Math.max(0, this.limit - this.count);
  }

  /** Counts one model step; false (and nothing counted) once the limit is used. */
  next(): boolean {
    if (this.count >= this.limit) return false;
    this.count++;
    return true;
  }
}
