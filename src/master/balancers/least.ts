// least: each connection goes to the free worker with the fewest open connections; near-ties go
// to the lower loop lag, then utilisation, and a worker whose loop lags past 100 ms is skipped
// while a healthier one is free. It keeps rr's backpressure (only free workers are candidates)
// and adds what rr is blind to: connections held open by keep-alive, and a slow loop.
import { leastBusy } from './choose.js';
import type { DispatchStrategy } from './dispatch.js';

export const leastConnections: DispatchStrategy = {
  pick: (free) => leastBusy(free.map((worker) => worker.load())),
};
