import type { BcDecision, DispatchCaps } from "../../src/dispatch/policy/caps.ts";

/**
 * A tenant's caps as one table: may it start one more workflow now, and for
 * Class B/C does that open a burst window, or when does the cooldown that
 * stops it end. Two homes: bcEligible and aEligible (src/dispatch/policy/
 * caps.ts) and includes/tenantCaps.lua inside dispatch-18.lua.
 * test/conformance/caps.test.ts checks each row against the pure functions
 * and through the real dispatch script (a tenant with these caps, this burst
 * start and this many running, and one workflow queued: does it move).
 *
 * `running` is the tenant's running Class B + C for a "B/C" row, its running
 * Class A for an "A" row. `burstStart` is when its current or last window
 * opened (absent: never).
 */
export type CapsRow = Pick<DispatchCaps, "mca" | "burstMca" | "burstMs" | "cooldownMs" | "mcaUrgent">;

export type CapsCase = { name: string; caps: CapsRow; burstStart?: number; now: number; running: number } & (
  | { ask: "B/C"; expected: BcDecision }
  | { ask: "A"; expected: boolean }
);

/** Enterprise-like: mca 150, burst to 250 for 60 s, then 600 s of cooldown. */
const big: CapsRow = { mca: 150, burstMca: 250, burstMs: 60_000, cooldownMs: 600_000, mcaUrgent: 1000 };
const T = 1_000_000;

export const CAPS_CASES: CapsCase[] = [
  {
    name: "a tenant under mca starts work without touching the burst",
    caps: big,
    now: 0,
    running: 149,
    ask: "B/C",
    expected: { eligible: true, startsBurst: false },
  },
  {
    name: "the first dispatch above mca opens a burst window",
    caps: big,
    now: T,
    running: 150,
    ask: "B/C",
    expected: { eligible: true, startsBurst: true },
  },
  {
    name: "inside the window a tenant starts work up to burst.mca without opening another",
    caps: big,
    burstStart: T,
    now: T + 59_999,
    running: 249,
    ask: "B/C",
    expected: { eligible: true, startsBurst: false },
  },
  {
    name: "never above burst.mca, even inside the window",
    caps: big,
    burstStart: T,
    now: T + 59_999,
    running: 250,
    ask: "B/C",
    expected: { eligible: false, startsBurst: false },
  },
  {
    name: "the window closes after burst.seconds and the tenant is refused until the cooldown ends",
    caps: big,
    burstStart: T,
    now: T + 60_000,
    running: 150,
    ask: "B/C",
    expected: { eligible: false, startsBurst: false, retryAt: T + 660_000 },
  },
  {
    name: "below mca is always fine, even in the cooldown",
    caps: big,
    burstStart: T,
    now: T + 60_000,
    running: 149,
    ask: "B/C",
    expected: { eligible: true, startsBurst: false },
  },
  {
    name: "the cooldown's last millisecond still refuses",
    caps: big,
    burstStart: T,
    now: T + 659_999,
    running: 150,
    ask: "B/C",
    expected: { eligible: false, startsBurst: false, retryAt: T + 660_000 },
  },
  {
    name: "after the cooldown a new window opens",
    caps: big,
    burstStart: T,
    now: T + 660_000,
    running: 150,
    ask: "B/C",
    expected: { eligible: true, startsBurst: true },
  },
  {
    name: "with no cooldown a new window opens as soon as the last one closes",
    caps: { ...big, cooldownMs: 0 },
    burstStart: T,
    now: T + 60_000,
    running: 150,
    ask: "B/C",
    expected: { eligible: true, startsBurst: true },
  },
  {
    name: "a window opened by a dispatcher whose clock is ahead counts as open",
    caps: big,
    burstStart: T + 5_000,
    now: T,
    running: 200,
    ask: "B/C",
    expected: { eligible: true, startsBurst: false },
  },
  {
    name: "there is no burst when burst.seconds is 0",
    caps: { mca: 3, burstMca: 5, burstMs: 0, cooldownMs: 0, mcaUrgent: 1000 },
    now: 0,
    running: 3,
    ask: "B/C",
    expected: { eligible: false, startsBurst: false },
  },
  {
    name: "there is no burst when burst.mca is mca",
    caps: { mca: 3, burstMca: 3, burstMs: 30_000, cooldownMs: 300_000, mcaUrgent: 1000 },
    now: T,
    running: 3,
    ask: "B/C",
    expected: { eligible: false, startsBurst: false },
  },
  {
    name: "Class A under mcaUrgent starts",
    caps: { ...big, mcaUrgent: 2 },
    now: T,
    running: 1,
    ask: "A",
    expected: true,
  },
  {
    name: "Class A is capped at mcaUrgent",
    caps: { ...big, mcaUrgent: 2 },
    now: T,
    running: 2,
    ask: "A",
    expected: false,
  },
  {
    name: "a tenant with mcaUrgent 0 never starts Class A",
    caps: { ...big, mcaUrgent: 0 },
    now: T,
    running: 0,
    ask: "A",
    expected: false,
  },
  {
    name: "Class A ignores mca and the burst: B/C at burst.mca in a cooldown does not hold it",
    caps: { ...big, mcaUrgent: 3 },
    burstStart: T,
    now: T + 60_000,
    running: 0,
    ask: "A",
    expected: true,
  },
];
