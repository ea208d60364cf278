// least: each connection goes to the free worker with the fewest open connections; near-ties go
// to the lower loop lag, then utilisation, and a worker whose loop lags past 100 ms is skipped
// while a healthier one is free. It keeps rr's backpressure (only free workers are candidates)
// and adds what rr is blind to: connections held open by keep-alive, and a slow loop.
import { NEAR_TIE, STALLED, healthRank, leastBusy, type WorkerLoad } from './choose.js';
import type { DispatchStrategy } from './dispatch.js';

/**
 * How long a connection may wait for a busy worker with clearly fewer connections than the free
 * one chosen. A burst of new connections (a client opening its pool) otherwise goes mostly to
 * whichever worker acknowledges faster, and keep-alive keeps that imbalance for good; a worker
 * that does not acknowledge within this (busy in a callback) is passed over as before.
 */
export const HOLD_MS = 3;

/** `least` with a hold of `holdMs` (tests pass a long one to see a hold end on an ack). */
export function leastStrategy(holdMs = HOLD_MS): DispatchStrategy {
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
    hold(chosen, busy, now) {
      const candidates = busy.filter(({ worker }) => worker.accepting).map(({ worker, sentAt }) => ({ load: worker.load(), ageMs: now - sentAt }));
      return fairHold(chosen.load(), candidates, holdMs);
    },
  };
}

export const leastConnections = leastStrategy();

/**
 * How long to wait (ms, 0: not at all) for a busy worker, of health no worse than the chosen
 * one's, that would still have more than a near-tie fewer connections than it once its
 * connection in flight is taken, and that has not kept that connection for `holdMs` yet.
 */
export function fairHold(chosen: WorkerLoad, busy: ReadonlyArray<{ load: WorkerLoad; ageMs: number }>, holdMs = HOLD_MS): number {
  let wait = 0;
  for (const { load, ageMs } of busy) {
    if (ageMs >= holdMs || healthRank(load) > healthRank(chosen)) continue;
    if (load.connections + 1 + NEAR_TIE < chosen.connections) wait = Math.max(wait, holdMs - ageMs);
  }
  return wait;
}
