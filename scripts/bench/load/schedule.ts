// The open-loop schedule: request i is due at start + i / rate, whatever happened to the requests before
// it. Each due time is computed from i, never by adding intervals, so rounding does not drift over a
// run of hundreds of thousands of requests. Also the test of whether the generator held its rate.

/** Requests due in a run of `durationS` at `rate` per second: those with i / rate < durationS. */
export function scheduledCount(rate: number, durationS: number): number {
  return Math.max(0, Math.ceil(rate * durationS - 1e-9));
}

/** When request `index` is due, in ms on the clock `startMs` was read from. */
export function dueAtMs(startMs: number, index: number, rate: number): number {
  return startMs + (index * 1000) / rate;
}

/** How many requests (indices 0..n-1) are due `elapsedMs` after the start, at most `total`. */
export function dueBy(elapsedMs: number, rate: number, total: number): number {
  if (elapsedMs < 0) return 0;
  // The small allowance keeps request i due at exactly i / rate when the float product lands a hair low.
  return Math.min(total, Math.floor((elapsedMs * rate) / 1000 + 1e-9) + 1);
}

/** How long until request `index` is due, in whole ms for setTimeout (at least 1, its floor anyway). */
export function waitMs(nowMs: number, startMs: number, index: number, rate: number): number {
  return Math.max(1, Math.ceil(dueAtMs(startMs, index, rate) - nowMs));
}

/** Thresholds past which the generator, not the system, failed to keep the schedule. */
export const HOLD = {
  /** p99 of the pacing loop's lateness (when it handled a request - when it was due). */
  sendLagP99Ms: 5,
  /** Requests sent per second over the run, as a share of the target rate. */
  sendRateShare: 0.99,
} as const;

/** Whether the generator held `rate`; `why` says what broke when it did not. */
export function judgeRate({ rate, sendRate, sendLagP99Ms }: { rate: number; sendRate: number; sendLagP99Ms: number }): { held: boolean; why?: string } {
  const reasons: string[] = [];
  if (sendLagP99Ms > HOLD.sendLagP99Ms) reasons.push(`its send lag p99 was ${sendLagP99Ms.toFixed(1)} ms (limit ${HOLD.sendLagP99Ms} ms)`);
  if (sendRate < rate * HOLD.sendRateShare) {
    reasons.push(`it sent ${Math.round(sendRate)} req/s, ${((sendRate / rate) * 100).toFixed(1)}% of ${Math.round(rate)} (limit ${HOLD.sendRateShare * 100}%)`);
  }
  return reasons.length ? { held: false, why: reasons.join('; ') } : { held: true };
}
