// rr: each connection goes to the free worker that has been idle longest, like Node's cluster.
import type { DispatchStrategy } from './dispatch.js';

export const roundRobin: DispatchStrategy = {
  pick: () => 0,
};
