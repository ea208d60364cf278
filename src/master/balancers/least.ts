// least: each connection goes to the free worker with the fewest open connections; near-ties go
// to the lower loop lag, then utilisation, and a worker whose loop lags past 100 ms is skipped
// while a healthier one is free. It keeps rr's backpressure (only free workers are candidates)
// and adds what rr is blind to: connections held open by keep-alive, and a slow loop.
import { isUnhealthy, leastBusy } from './choose.js';
import type { DispatchStrategy } from './dispatch.js';

export const leastConnections: DispatchStrategy = {
  pick(free, all) {
    const index = leastBusy(free.map((worker) => worker.load()));
    // Every free worker is stalled or lagging: keep the connection for a healthy busy one, if any.
    if (index >= 0 && isUnhealthy(free[index]!.load()) && [...all].some((worker) => worker.accepting && !isUnhealthy(worker.load()))) return -1;
    return index;
  },
};
