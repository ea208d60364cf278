// What node:cluster tells the code in a worker, under clusterd: `cluster.isWorker` is true and
// `cluster.worker` describes this process, as under node:cluster and PM2's cluster mode. Apps
// written for node:cluster branch on `isWorker` (`if (cluster.isMaster) fork(); else if
// (cluster.isWorker) listen()` would otherwise run neither branch) and log `cluster.worker.id`
// (a TypeError at start-up without it).
//
// The object is Node's child-side Worker in small: the id is clusterd's (1..N, kept by a
// replacement); send() goes to the master, which reads only its own messages and the PM2-style
// 'ready'; disconnect() stops accepting, lets open connections finish and exits, and the master
// starts a replacement, as PM2 does for a worker that leaves; kill() and destroy() exit at once.
import cluster from 'node:cluster';
import { EventEmitter } from 'node:events';
import { drainServers } from './drain.js';

class ClusterWorker extends EventEmitter {
  readonly id: number;
  readonly process = process;
  state: 'online' | 'disconnecting' = 'online';
  exitedAfterDisconnect: boolean | undefined = undefined;

  constructor(id: number) {
    super();
    this.id = id;
  }

  send(...args: unknown[]): boolean {
    return (process.send as (...args: unknown[]) => boolean)(...args);
  }

  isConnected(): boolean {
    return process.connected;
  }

  isDead(): boolean {
    return false;
  }

  disconnect(): this {
    if (this.state === 'disconnecting') return this;
    this.state = 'disconnecting';
    this.exitedAfterDisconnect = true;
    // 'disconnect', as node:cluster's worker emits once its servers have closed, before it exits.
    void drainServers().then(() => {
      this.emit('disconnect');
      process.exit(0);
    });
    return this;
  }

  kill(): void {
    process.exit(0);
  }

  destroy(): void {
    process.exit(0);
  }
}

/** Makes the app's node:cluster see a worker: `isWorker` and `worker` (isPrimary is set false by the listen hook). */
export function installClusterWorker(id: number): void {
  const clusterModule = cluster as unknown as Record<string, unknown>;
  clusterModule.isWorker = true;
  clusterModule.worker = new ClusterWorker(id);
}
