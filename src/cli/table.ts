/**
 * Plain aligned text tables for the CLI, pure: numbers right-aligned, text
 * left — or as `right` says, for columns of numbers with units ("0.98×", "45s").
 */
export function formatTable(headers: string[], rows: (string | number)[][], right?: boolean[]): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length)));
  const numeric = headers.map((_, i) => right?.[i] ?? (cells.length > 0 && cells.every((r) => /^-?[\d.,/ ·%–-]*$/.test(r[i] ?? ""))));
  const line = (r: string[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return `${[line(headers), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n")}\n`;
}

/** "key: value" lines, keys aligned. */
export function formatPairs(pairs: [string, string | number][]): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return `${pairs.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n")}\n`;
}
