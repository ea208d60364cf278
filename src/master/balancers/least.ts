// least: each connection goes to the free worker with the fewest open connections; near-ties go
// to the lower loop lag, then utilisation, and a worker whose loop lags past 100 ms is skipped
// while a healthier one is free. It keeps rr's backpressure (only free workers are candidates)
// and adds what rr is blind to: connections held open by keep-alive, and a slow loop.
import { NEAR_TIE, STALLED, healthRank, leastBusy, type WorkerLoad } from './choose.js';
import type { DispatchStrategy } from './dispatch.js';
import type { BalancedWorker } from './types.js';

/**
 * How long a connection may wait for a busy worker with clearly fewer connections than the free
 * one chosen. A burst of new connections (a client opening its pool) otherwise goes mostly to
 * whichever worker acknowledges faster, and keep-alive keeps that imbalance for good; a worker
 * that does not acknowledge within this (busy in a callback) is passed over as before.
 */
export const HOLD_MS = 3;

/**
 * The longest the hold grows to for a worker whose acknowledgements come slowly. On an overloaded
 * machine a round trip to a worker often takes more than HOLD_MS (every process waits for a core;
 * a quarter of them did, under a 64-connection burst), and a fixed hold gave up on them, letting the
 * burst go unevenly; so the hold follows the worker's own round trips, within this bound: a worker
 * blocked in a callback still delays a connection at most this.
 */
export const MAX_HOLD_MS = 20;

/** How much of each new round trip the smoothed one takes in. */
const SMOOTHING = 1 / 4;

/** `least` with a hold of `holdMs`, growing to `maxHoldMs` as round trips do (tests pass a long one to see a hold end on an ack). */
export function leastStrategy(holdMs = HOLD_MS, maxHoldMs = Math.max(holdMs, MAX_HOLD_MS)): DispatchStrategy {
  // Each worker's smoothed round trip, from a connection sent to its acknowledgement (ms).
  const roundTrips = new WeakMap<BalancedWorker, number>();
  return {
    pick(free, all) {
      const index = leastBusy(free.map((worker) => worker.load()));
      if (index < 0) return index;
      // A busy worker in better health than every free one gets the connection once it is free;
      // and a stalled loop would only hold it: it waits in the master until a worker resumes or acks.
      const chosen = healthRank(free[index]!.load());
      if (chosen === STALLED) return -1;
      for (const worker of all) if (worker.accepting && healthRank(worker.load()) < chosen) return -1;
      return index;
    },
    acked(worker, ms) {
      // One long block counts no more than the bound: it says little of the next round trip.
      const sample = Math.min(Math.max(0, ms), maxHoldMs);
      const smoothed = roundTrips.get(worker);
      roundTrips.set(worker, smoothed === undefined ? sample : smoothed + (sample - smoothed) * SMOOTHING);
    },
    hold(chosen, busy, now) {
      const candidates = busy
        .filter(({ worker }) => worker.accepting)
        .map(({ worker, sentAt }) => ({ load: worker.load(), ageMs: now - sentAt, holdMs: holdFor(roundTrips.get(worker), holdMs, maxHoldMs) }));
      return fairHold(chosen.load(), candidates, holdMs);
    },
  };
}

export const leastConnections = leastStrategy();

/** Twice the worker's smoothed round trip (most acknowledgements come within it), between `holdMs` and `maxHoldMs`. */
export function holdFor(roundTripMs: number | undefined, holdMs: number, maxHoldMs: number): number {
  if (roundTripMs === undefined) return holdMs;
  return Math.min(maxHoldMs, Math.max(holdMs, 2 * roundTripMs));
}

/**
 * How long to wait (ms, 0: not at all) for a busy worker, of health no worse than the chosen
 * one's, that would still have more than a near-tie fewer connections than it once its
 * connection in flight is taken, and that has not kept that connection for its hold (its own
 * `holdMs`, else `holdMs`) yet.
 */
export function fairHold(chosen: WorkerLoad, busy: ReadonlyArray<{ load: WorkerLoad; ageMs: number; holdMs?: number }>, holdMs = HOLD_MS): number {
  let wait = 0;
  for (const { load, ageMs, holdMs: own = holdMs } of busy) {
    if (ageMs >= own || healthRank(load) > healthRank(chosen)) continue;
    if (load.connections + 1 + NEAR_TIE < chosen.connections) wait = Math.max(wait, own - ageMs);
  }
  return wait;
}
