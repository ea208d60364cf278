// least: each connection goes to the free worker with the fewest open connections; near-ties go
// to the lower loop lag, then utilisation, and a worker whose loop lags past 100 ms is skipped
// while a healthier one is free. It keeps rr's backpressure (only free workers are candidates)
// and adds what rr is blind to: connections held open by keep-alive, and a slow loop.
import { STALLED, healthRank, leastBusy } from './choose.js';
import type { DispatchStrategy } from './dispatch.js';

export const leastConnections: DispatchStrategy = {
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
};
