// Issue 2, point 6: restart delays grow exponentially, carry jitter, and never pass maxMs.
import test from 'ava';
import { DEFAULT_BACKOFF, backoffDelay, type BackoffPolicy } from '../../src/master/backoff.js';

const policy: BackoffPolicy = { initialMs: 100, maxMs: 15_000, resetAfterMs: 30_000, jitter: 0.2 };

// [attempt, random(), expected delay]: base = min(maxMs, 100 * 2^attempt), then base ± 10%.
const exact = test.macro({
  exec(t, attempt: number, random: number, expected: number) {
    t.is(backoffDelay(policy, attempt, () => random), expected);
  },
  title: (_title, attempt: number, random: number, expected: number) => `attempt ${attempt} with random ${random} waits ${expected} ms`,
});
for (const [attempt, random, expected] of [
  [0, 0, 90],
  [0, 0.5, 100],
  [0, 0.999, 110],
  [1, 0, 180],
  [1, 0.5, 200],
  [2, 0.5, 400],
  [3, 0.25, 760],
  [7, 0.5, 12_800],
  [8, 0, 13_500],
  [8, 0.5, 15_000],
  // The upper jitter must not carry the delay past maxMs.
  [8, 0.999, 15_000],
  [50, 0.999, 15_000],
  [2000, 0.5, 15_000],
  // Attempt -1 (the supervisor's first restart after a reset) waits like attempt 0.
  [-1, 0.5, 100],
] as const) {
  test(exact, attempt, random, expected);
}

test('every delay lies within ±jitter/2 of its base and never past maxMs', (t) => {
  for (let attempt = 0; attempt <= 20; attempt++) {
    const base = Math.min(policy.maxMs, policy.initialMs * 2 ** attempt);
    for (let draw = 0; draw < 50; draw++) {
      const delay = backoffDelay(policy, attempt);
      t.true(delay >= Math.floor(base * 0.9) && delay <= Math.min(policy.maxMs, Math.ceil(base * 1.1)), `attempt ${attempt}: ${delay} ms`);
    }
  }
});

test('the default random source spreads delays (jitter is real)', (t) => {
  const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(policy, 5)));
  t.true(delays.size > 1, [...delays].join(', '));
});

test('without jitter the delay is exactly the exponential base', (t) => {
  const flat = { ...policy, jitter: 0 };
  t.deepEqual(
    [0, 1, 2, 3, 4, 10].map((attempt) => backoffDelay(flat, attempt, () => 0.73)),
    [100, 200, 400, 800, 1600, 15_000],
  );
});

test('the documented defaults: 100 ms doubling to 15 s, ±10% jitter, reset after 30 s', (t) => {
  t.deepEqual(DEFAULT_BACKOFF, { initialMs: 100, maxMs: 15_000, resetAfterMs: 30_000, jitter: 0.2 });
});
