/** How a key pattern of queues/keys.ts (literal text with `<param>` placeholders) becomes a key or a builder. */

/** Matches one placeholder of a pattern. */
export const PLACEHOLDER = /<([A-Za-z][A-Za-z0-9]*)>/g;

type KeyArg = string | number;
type Placeholders<P extends string> = P extends `${string}<${string}>${infer Rest}` ? [KeyArg, ...Placeholders<Rest>] : [];
/** What a pattern builds: a key, or a function of its placeholders. */
export type Built<P extends string> = Placeholders<P> extends [] ? string : (...args: Placeholders<P>) => string;
export type BuiltAll<T extends Record<string, string>> = { -readonly [K in keyof T]: Built<T[K]> };

/**
 * The builder of `prefix` + `pattern`. The literal pieces are joined once, here, so a call costs what
 * a template literal does (keys are built on every request and every run).
 */
export function compilePattern<P extends string>(prefix: string, pattern: P): Built<P> {
  const c = pattern.split(new RegExp(PLACEHOLDER.source));
  // split keeps the captured names at the odd indexes: the literals are at the even ones.
  const lit = c.filter((_, i) => i % 2 === 0);
  lit[0] = prefix + lit[0];
  const [a, b = "", d = ""] = lit;
  let built: string | ((...args: KeyArg[]) => string);
  switch (lit.length) {
    case 1:
      built = a!;
      break;
    case 2:
      built = (x: KeyArg) => a + x + b;
      break;
    case 3:
      built = (x: KeyArg, y: KeyArg) => a + x + b + y + d;
      break;
    default:
      built = (...args: KeyArg[]) => lit.reduce((s, l, i) => (i === 0 ? l : s + args[i - 1] + l), "");
  }
  return built as Built<P>;
}

export function compileAll<T extends Record<string, string>>(prefix: string, patterns: T): BuiltAll<T> {
  const out: Record<string, unknown> = {};
  for (const [name, pattern] of Object.entries(patterns)) out[name] = compilePattern(prefix, pattern);
  return out as BuiltAll<T>;
}
