/** The statistics of the noisy-neighbour signal, pure: medians and Spearman's and Pearson's correlations. */

/** The median of `xs` (sorted in place). */
export function median(xs: number[]): number {
  const s = xs.sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Spearman's rank correlation (Pearson's over average ranks, so ties count fairly); null when either side is constant. */
export function spearman(xs: readonly number[], ys: readonly number[]): number | null {
  return pearson(ranks(xs), ranks(ys));
}

export function pearson(xs: readonly number[], ys: readonly number[]): number | null {
  const n = xs.length;
  if (n < 2 || ys.length !== n) return null;
  let mx = 0;
  let my = 0;
  for (let k = 0; k < n; k++) {
    mx += xs[k]!;
    my += ys[k]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let k = 0; k < n; k++) {
    const dx = xs[k]! - mx;
    const dy = ys[k]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : null;
}

function ranks(xs: readonly number[]): number[] {
  const order = xs.map((_, k) => k).sort((a, b) => xs[a]! - xs[b]!);
  const r = new Array<number>(xs.length);
  for (let k = 0; k < order.length; ) {
    let j = k;
    while (j + 1 < order.length && xs[order[j + 1]!] === xs[order[k]!]) j++;
    for (let m = k; m <= j; m++) r[order[m]!] = (k + j) / 2;
    k = j + 1;
  }
  return r;
}

/** The median of a sorted array with one occurrence of `without` left out (undefined: none); NaN when nothing is left. */
export function medianWithout(sorted: Float64Array, without: number | undefined): number {
  let skip = -1;
  if (without !== undefined) {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (sorted[m]! < without) lo = m + 1;
      else hi = m;
    }
    if (lo < sorted.length && sorted[lo] === without) skip = lo;
  }
  const n = sorted.length - (skip >= 0 ? 1 : 0);
  if (n <= 0) return NaN;
  const at = (k: number) => sorted[skip >= 0 && k >= skip ? k + 1 : k]!;
  return n % 2 ? at((n - 1) / 2) : (at(n / 2 - 1) + at(n / 2)) / 2;
}
