// The master accepts; each connection goes to the next free worker. A worker is free when it
// has acknowledged the last connection it was sent, so a worker stuck in a long callback gets
// nothing new and its share queues for the others (Node's cluster round-robin behaves so too).
import type { ListenQuery, SockName } from '../../protocol.js';
import { listenRaw } from './bind.js';
import type { BalancedWorker, Balancer, RawHandle } from './types.js';

interface InFlight {
  id: number;
  connection: RawHandle;
}

export class RoundRobinBalancer implements Balancer {
  readonly key: string;
  readonly sockname: SockName;
  #listener: RawHandle | null;
  readonly #workers = new Set<BalancedWorker>();
  // Workers with nothing unacknowledged, longest-idle first.
  readonly #free: BalancedWorker[] = [];
  readonly #inFlight = new Map<BalancedWorker, InFlight>();
  readonly #queue: RawHandle[] = [];
  #nextId = 0;

  private constructor(key: string, listener: RawHandle, sockname: SockName) {
    this.key = key;
    this.sockname = sockname;
    this.#listener = listener;
    listener.onconnection = (status, connection) => {
      if (status === 0) this.#distribute(connection);
    };
  }

  /** Binds the address in the master; rejects with a BindError. */
  static async open(query: ListenQuery): Promise<RoundRobinBalancer> {
    const { handle, sockname } = await listenRaw(query);
    return new RoundRobinBalancer(query.key, handle, sockname);
  }

  get size(): number {
    return this.#workers.size;
  }

  /** Connections accepted but not yet taken by a worker. */
  get queued(): number {
    return this.#queue.length;
  }

  add(worker: BalancedWorker, seq: number): void {
    worker.send({ cmd: 'clusterd:listen-reply', seq, errno: 0, mode: 'rr', sockname: this.sockname });
    if (this.#workers.has(worker)) return;
    this.#workers.add(worker);
    // Back after closing its server with a handoff still unsettled: its ack resumes handoffs.
    // Not yet accepting (--wait-ready): activate() starts them.
    if (!this.#inFlight.has(worker) && worker.accepting) this.#handoff(worker);
  }

  activate(worker: BalancedWorker): void {
    if (this.#workers.has(worker) && !this.#inFlight.has(worker) && !this.#free.includes(worker)) this.#handoff(worker);
  }

  remove(worker: BalancedWorker): void {
    this.#workers.delete(worker);
    const index = this.#free.indexOf(worker);
    if (index !== -1) this.#free.splice(index, 1);
    // A live worker (one that closed its server, or drains) still settles a connection it was
    // sent: it accepts it, or refuses it and ack() re-routes it. One that died never will, and
    // may have read from it, so it cannot go to another worker: close the master's copy
    // (nodejs/node#21746 leaked it); the worker's own copy died with it.
    if (worker.exited) this.#dropInFlight(worker);
  }

  ack(worker: BalancedWorker, id: number, accepted: boolean): void {
    const pending = this.#inFlight.get(worker);
    if (!pending || pending.id !== id) return;
    this.#inFlight.delete(worker);
    if (accepted) pending.connection.close();
    else this.#distribute(pending.connection);
    if (this.#workers.has(worker)) this.#handoff(worker);
  }

  close(): void {
    this.#listener?.close();
    this.#listener = null;
    for (const connection of this.#queue.splice(0)) connection.close();
    for (const worker of [...this.#workers]) this.remove(worker);
    // Nothing is re-routed any more: an unsettled handoff keeps only the worker's copy.
    for (const worker of [...this.#inFlight.keys()]) this.#dropInFlight(worker);
  }

  #dropInFlight(worker: BalancedWorker): void {
    const pending = this.#inFlight.get(worker);
    this.#inFlight.delete(worker);
    pending?.connection.close();
  }

  #distribute(connection: RawHandle): void {
    this.#queue.push(connection);
    const worker = this.#free.shift();
    if (worker) this.#handoff(worker);
  }

  #handoff(worker: BalancedWorker): void {
    const connection = this.#queue.shift();
    if (!connection) {
      this.#free.push(worker);
      return;
    }
    const id = ++this.#nextId;
    this.#inFlight.set(worker, { id, connection });
    if (!worker.send({ cmd: 'clusterd:conn', id, key: this.key }, connection)) {
      // The channel is already closed: the worker is on its way out.
      this.#inFlight.delete(worker);
      this.#workers.delete(worker);
      this.#distribute(connection);
    }
  }
}
