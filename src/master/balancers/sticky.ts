// sticky: connections from one client address go to the same worker while it lives (WebSocket
// and long-polling apps such as socket.io), by rendezvous hashing over worker ids. A worker that
// leaves takes only its own addresses with it; the rest stay put.
import { rendezvous } from './choose.js';
import type { DispatchStrategy } from './dispatch.js';
import type { BalancedWorker, RawHandle } from './types.js';

export const stickyByAddress: DispatchStrategy = {
  pin(connection: RawHandle, accepting: readonly BalancedWorker[]): BalancedWorker | null {
    if (accepting.length === 0) return null;
    const peer: { address?: string } = {};
    connection.getpeername?.(peer);
    const id = rendezvous(peer.address ?? '', accepting.map((worker) => worker.id));
    // Two processes share an id only during a replacement: prefer the newer (the later added).
    return accepting.findLast((worker) => worker.id === id) ?? null;
  },
  pick: () => 0,
};
