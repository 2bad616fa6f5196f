/**
 * Who acts, as the audit log and tenants' cancellation messages show it. It
 * comes from a request (the Basic user name or X-Fairlane-Operator), so it is
 * checked once at the edge (adminAuth) and only a checked name has this type:
 * nothing stores a raw header. Letters of any script, digits, spaces inside and
 * . _ @ + ' -, at most 64 characters: no control or format characters (a
 * newline forging a second log line, a bidi override disguising a name), no
 * markup, no padding.
 */
declare const checked: unique symbol;
export type OperatorName = string & { readonly [checked]: true };

export const OPERATOR_NAME_RULE = "1-64 characters: letters, digits, spaces (not at either end) and . _ @ + ' -";
const OPERATOR_NAME = /^(?! )[\p{L}\p{M}\p{N}._@+' -]+(?<! )$/u;

/** The name in NFC, or null when it breaks OPERATOR_NAME_RULE. */
export function operatorName(raw: string): OperatorName | null {
  const name = raw.normalize("NFC");
  if ([...name].length > 64 || !OPERATOR_NAME.test(name)) return null;
  return name as OperatorName;
}
