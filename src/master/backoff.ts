// Restart delays: exponential with proportional jitter, reset once a worker has stayed up.

export interface BackoffPolicy {
  /** Delay before the first restart. */
  initialMs: number;
  /** Upper bound of the delay. */
  maxMs: number;
  /** A worker that stayed up this long resets its slot's backoff. */
  resetAfterMs: number;
  /** Share of the delay that is randomised, 0..1 (0.2 = +-10%). */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 15_000, resetAfterMs: 30_000, jitter: 0.2 };

/** The delay before restart number `attempt` (0-based); `random` is injectable for tests. */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, attempt));
  const spread = base * policy.jitter;
  // Clamped: maxMs is a bound on the delay itself, so upward jitter stops there.
  return Math.min(policy.maxMs, Math.max(0, Math.round(base - spread / 2 + random() * spread)));
}
