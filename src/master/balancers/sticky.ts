// sticky: connections from one client address go to the same worker (WebSocket and long-polling
// apps such as socket.io), by rendezvous hashing over the worker ids the cluster is configured for,
// as nginx's hash is over its upstream list, whether each worker is up or not. A worker that is
// starting (--wait-ready), restarting or waiting out a crash's backoff keeps its addresses: their
// connections wait for it (DispatchBalancer, bounded). Hashed only over the workers accepting, they
// went to another worker in that window and came back after, and a socket.io session opened there
// was lost. Scaling changes the ids, and moves only the addresses of the ids added or removed.
import { rendezvous } from './choose.js';
import type { DispatchStrategy } from './dispatch.js';
import type { BalancedWorker, RawHandle } from './types.js';

export const stickyByAddress: DispatchStrategy = {
  pin(connection: RawHandle, accepting: readonly BalancedWorker[], ids: readonly number[]): BalancedWorker | number | null {
    const peer: { address?: string } = {};
    connection.getpeername?.(peer);
    const address = peer.address ?? '';
    if (ids.length > 0) {
      const id = rendezvous(address, ids);
      // Two processes share an id only during a replacement: prefer the newer (the later added).
      return accepting.findLast((worker) => worker.id === id) ?? id;
    }
    if (accepting.length === 0) return null;
    const id = rendezvous(address, accepting.map((worker) => worker.id));
    return accepting.findLast((worker) => worker.id === id) ?? null;
  },
  pick: () => 0,
};
