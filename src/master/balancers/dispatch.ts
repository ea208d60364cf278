// The master accepts and hands each connection to a worker, one unacknowledged connection per
// worker at most. A worker is *free* when it has acknowledged the last connection it was sent,
// so one stuck in a long callback gets nothing new and its share waits for the others: that
// backpressure is Node's cluster round-robin's, and every dispatching strategy keeps it. A
// strategy only decides which worker: the next free one (rr), the least busy free one (least),
// or the one a client address hashes to, free or not (sticky).
import type { ListenQuery, SockName } from '../../protocol.js';
import { listenRaw } from './bind.js';
import type { BalancedWorker, Balancer, BalancerContext, RawHandle } from './types.js';

/**
 * sticky: how long a connection waits for the worker its address hashes to while that id's worker
 * is not accepting (starting, restarting, in a crash's backoff) before it goes to another one: a
 * --wait-ready app's start, or a restart, fits; a crash loop's backoff may not.
 */
export const WAIT_FOR_ID_MS = 5000;

/** Which worker gets a connection. */
export interface DispatchStrategy {
  /**
   * Pins the connection to one accepting worker, which gets it once free (sticky); a worker id:
   * it belongs to that id, whose worker does not accept now, and waits for it; null: no accepting
   * worker now. `ids`: the cluster's configured worker ids, or none (hash over those accepting: a
   * wait ran out). Strategies without pin() hand the connection to whichever worker pick() chooses
   * among the free ones.
   */
  pin?(connection: RawHandle, accepting: readonly BalancedWorker[], ids: readonly number[]): BalancedWorker | number | null;
  /**
   * The index in `free` (longest idle first, never empty) of the worker to hand the next
   * connection to, or -1 to keep it queued for a busy worker that would serve it better.
   */
  pick(free: readonly BalancedWorker[], all: ReadonlySet<BalancedWorker>): number;
  /**
   * After pick() chose `chosen`: how long (ms) to keep the connection queued instead, for one of
   * the `busy` workers (each with the time its unacknowledged connection was sent, from
   * performance.now()); 0 to send it now. Bounded: an ack ends the wait sooner, and a worker that
   * has not acknowledged within the hold is passed over.
   */
  hold?(chosen: BalancedWorker, busy: ReadonlyArray<{ worker: BalancedWorker; sentAt: number }>, now: number): number;
  /** The worker settled (took or refused) a connection `ms` after it was sent: a round trip, for hold(). */
  acked?(worker: BalancedWorker, ms: number): void;
}

interface InFlight {
  id: number;
  connection: RawHandle;
  sentAt: number;
}

export class DispatchBalancer implements Balancer {
  readonly key: string;
  readonly sockname: SockName;
  #listener: RawHandle | null;
  readonly #strategy: DispatchStrategy;
  readonly #workers = new Set<BalancedWorker>();
  // Workers with nothing unacknowledged, longest-idle first.
  readonly #free: BalancedWorker[] = [];
  readonly #inFlight = new Map<BalancedWorker, InFlight>();
  // Connections for any worker; with pin(), those that arrived while no worker accepted.
  readonly #queue: RawHandle[] = [];
  // With pin(): connections waiting for their own worker.
  readonly #pinned = new Map<BalancedWorker, RawHandle[]>();
  #nextId = 0;
  // Set while a connection waits out the strategy's hold().
  #holdTimer: NodeJS.Timeout | null = null;
  // Set by stopAccepting(): told once nothing is queued or in flight.
  #onDrained: (() => void) | null = null;
  // The workers that refused each connection they were sent (at the app's own maxConnections, or
  // their server closed): it goes to another, never back to them.
  readonly #refusals = new WeakMap<RawHandle, Set<BalancedWorker>>();
  // With pin(): connections waiting for the worker of their id to accept, each until its deadline.
  readonly #waiting = new Map<number, Array<{ connection: RawHandle; until: number }>>();
  // Connections whose wait ran out: they go to a worker accepting now.
  readonly #waitedOut = new WeakSet<RawHandle>();
  #waitTimer: NodeJS.Timeout | null = null;
  // The ids whose wait ran out and were said so, until their worker accepts again: their new
  // connections go to a worker accepting now without waiting.
  readonly #saidLate = new Set<number>();
  readonly #context: BalancerContext | null;

  private constructor(key: string, listener: RawHandle, sockname: SockName, strategy: DispatchStrategy, context: BalancerContext | null) {
    this.key = key;
    this.sockname = sockname;
    this.#strategy = strategy;
    this.#context = context;
    this.#listener = listener;
    listener.onconnection = (status, connection) => {
      if (status === 0) this.#distribute(connection);
    };
  }

  /** Binds the address in the master; rejects with a BindError. */
  static async open(query: ListenQuery, strategy: DispatchStrategy, context: BalancerContext | null = null): Promise<DispatchBalancer> {
    const { handle, sockname } = await listenRaw(query);
    return new DispatchBalancer(query.key, handle, sockname, strategy, context);
  }

  get size(): number {
    return this.#workers.size;
  }

  /** Connections accepted but not yet taken by a worker. */
  get queued(): number {
    let count = this.#queue.length;
    for (const queue of this.#pinned.values()) count += queue.length;
    for (const waiting of this.#waiting.values()) count += waiting.length;
    return count;
  }

  add(worker: BalancedWorker, seq: number): void {
    worker.send({ cmd: 'NODE_clusterd:listen-reply', seq, errno: 0, mode: 'rr', sockname: this.sockname });
    if (this.#workers.has(worker)) return;
    this.#workers.add(worker);
    // Back after closing its server with a handoff still unsettled: its ack releases it.
    // Not yet accepting (--wait-ready): activate() releases it.
    if (!this.#inFlight.has(worker) && worker.accepting) this.#release(worker);
    if (worker.accepting) this.#endWait(worker.id);
  }

  /** The worker may take connections now: it got ready, or its loop turns again after a stall. */
  activate(worker: BalancedWorker): void {
    if (!this.#workers.has(worker)) return;
    // A stall's end on a worker still starting or draining ends no sticky wait for its id (the waiting
    // connections would start their wait again, and the fallback be said again).
    if (worker.accepting) this.#endWait(worker.id);
    if (this.#inFlight.has(worker)) return;
    if (this.#free.includes(worker)) {
      this.#dispatchQueued();
      return;
    }
    // Connections that waited for any accepting worker find their own now.
    if (this.#strategy.pin) for (const connection of this.#queue.splice(0)) this.#distribute(connection);
    if (!this.#inFlight.has(worker) && !this.#free.includes(worker)) this.#release(worker);
  }

  remove(worker: BalancedWorker): void {
    this.#workers.delete(worker);
    const index = this.#free.indexOf(worker);
    if (index !== -1) this.#free.splice(index, 1);
    // Connections pinned to it and not yet sent go to another worker.
    const pinned = this.#pinned.get(worker);
    this.#pinned.delete(worker);
    for (const connection of pinned ?? []) this.#distribute(connection);
    // Scaled down: connections waiting for an id no longer configured find their worker now.
    const ids = this.#context?.ids() ?? [];
    for (const id of [...this.#waiting.keys()]) if (!ids.includes(id)) this.#endWait(id);
    // A live worker (one that closed its server, or drains) still settles a connection it was
    // sent: it accepts it, or refuses it and ack() re-routes it. One that died never will, and
    // may have read from it, so it cannot go to another worker: close the master's copy
    // (nodejs/node#21746 leaked it); the worker's own copy died with it.
    if (worker.exited) this.#dropInFlight(worker);
    this.#refuseRefused();
  }

  ack(worker: BalancedWorker, id: number, accepted: boolean): void {
    const pending = this.#inFlight.get(worker);
    if (!pending || pending.id !== id) return;
    this.#inFlight.delete(worker);
    this.#strategy.acked?.(worker, performance.now() - pending.sentAt);
    if (accepted) pending.connection.close();
    else this.#reroute(worker, pending.connection);
    if (this.#workers.has(worker)) this.#release(worker);
    if (this.#onDrained && this.queued === 0 && this.#inFlight.size === 0) this.#onDrained();
  }

  /**
   * A stop: no new connection is accepted, and those the master holds (queued while every worker had
   * one unacknowledged, under load) still go to the workers, which are told to stop only after.
   * close() threw them away: every connection queued at a stop under load was reset, its request
   * sent and lost.
   */
  stopAccepting(): Promise<void> {
    this.#listener?.close();
    this.#listener = null;
    // A stop starts no worker: what waited for one goes to those still up.
    for (const id of [...this.#waiting.keys()]) this.#endWait(id, true);
    if (this.queued === 0 && this.#inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onDrained = () => {
        this.#onDrained = null;
        resolve();
      };
    });
  }

  close(): void {
    this.#onDrained?.();
    if (this.#holdTimer) clearTimeout(this.#holdTimer);
    this.#holdTimer = null;
    this.#listener?.close();
    this.#listener = null;
    for (const connection of this.#queue.splice(0)) connection.close();
    for (const queue of this.#pinned.values()) for (const connection of queue) connection.close();
    this.#pinned.clear();
    if (this.#waitTimer) clearTimeout(this.#waitTimer);
    this.#waitTimer = null;
    for (const waiting of this.#waiting.values()) for (const { connection } of waiting) connection.close();
    this.#waiting.clear();
    for (const worker of [...this.#workers]) this.remove(worker);
    // Nothing is re-routed any more: an unsettled handoff keeps only the worker's copy.
    for (const worker of [...this.#inFlight.keys()]) this.#dropInFlight(worker);
  }

  /**
   * `worker` refused the connection: it goes to a worker that has not, and once every accepting
   * worker has, it is refused, as Node's server refuses a connection past maxConnections. Sent on to
   * whichever worker was next, a connection that every worker refused went round them all at full
   * speed until one had room (the master and the workers busy with it; measured: 4 connections over
   * 2 workers at maxConnections kept all three processes at 25-50% of a core).
   */
  #reroute(worker: BalancedWorker, connection: RawHandle): void {
    let refused = this.#refusals.get(connection);
    if (!refused) this.#refusals.set(connection, (refused = new Set()));
    refused.add(worker);
    if (this.#refusedByAll(connection)) connection.close();
    else this.#distribute(connection);
  }

  #refusedByAll(connection: RawHandle): boolean {
    const refused = this.#refusals.get(connection);
    return refused !== undefined && ![...this.#workers].some((worker) => worker.accepting && !refused.has(worker));
  }

  /** Closes the queued connections that every worker left has refused (one that would have taken them left). */
  #refuseRefused(): void {
    const refuse = (queue: RawHandle[]): void => {
      for (let index = queue.length - 1; index >= 0; index--) {
        if (this.#refusedByAll(queue[index]!)) queue.splice(index, 1)[0]!.close();
      }
    };
    refuse(this.#queue);
    for (const queue of this.#pinned.values()) refuse(queue);
  }

  #dropInFlight(worker: BalancedWorker): void {
    const pending = this.#inFlight.get(worker);
    this.#inFlight.delete(worker);
    pending?.connection.close();
  }

  #distribute(connection: RawHandle): void {
    const { pin } = this.#strategy;
    if (!pin) {
      this.#queue.push(connection);
      this.#dispatchQueued();
      return;
    }
    const refused = this.#refusals.get(connection);
    const accepting = [...this.#workers].filter((worker) => worker.accepting && !refused?.has(worker));
    // Refused by its own worker (at its maxConnections), or waited out: to one accepting now.
    const ids = refused || this.#waitedOut.has(connection) ? [] : (this.#context?.ids() ?? []);
    const target = pin(connection, accepting, ids);
    if (typeof target === 'number') {
      // Its worker already kept a connection waiting the whole bound: the others go elsewhere at
      // once until it accepts, rather than each wait again (a crash loop's backoff outlasts it).
      if (this.#saidLate.has(target)) {
        this.#waitedOut.add(connection);
        this.#distribute(connection);
      } else this.#waitFor(target, connection);
      return;
    }
    if (!target) {
      this.#queue.push(connection);
      return;
    }
    let queue = this.#pinned.get(target);
    if (!queue) this.#pinned.set(target, (queue = []));
    queue.push(connection);
    const index = this.#free.indexOf(target);
    if (index !== -1) {
      this.#free.splice(index, 1);
      this.#release(target);
    }
  }

  /** Keeps `connection` for the worker of `id` until it accepts, or WAIT_FOR_ID_MS have passed. */
  #waitFor(id: number, connection: RawHandle): void {
    let waiting = this.#waiting.get(id);
    if (!waiting) this.#waiting.set(id, (waiting = []));
    waiting.push({ connection, until: performance.now() + WAIT_FOR_ID_MS });
    this.#waitTimer ??= setTimeout(() => this.#waitRanOut(), WAIT_FOR_ID_MS).unref();
  }

  /** The connections waiting for `id` go where they belong now (`out`: to a worker accepting now). */
  #endWait(id: number, out = false): void {
    if (!out) this.#saidLate.delete(id);
    const waiting = this.#waiting.get(id);
    if (!waiting) return;
    this.#waiting.delete(id);
    for (const { connection } of waiting) {
      if (out) this.#waitedOut.add(connection);
      this.#distribute(connection);
    }
  }

  /** Connections whose wait ran out go to a worker accepting now; the log says so, once per id until it accepts. */
  #waitRanOut(): void {
    this.#waitTimer = null;
    const now = performance.now();
    let next = Infinity;
    for (const [id, waiting] of [...this.#waiting]) {
      const late = waiting.filter(({ until }) => until <= now);
      if (late.length === 0) {
        next = Math.min(next, waiting[0]!.until);
        continue;
      }
      const rest = waiting.filter(({ until }) => until > now);
      if (rest.length > 0) {
        this.#waiting.set(id, rest);
        next = Math.min(next, rest[0]!.until);
      } else this.#waiting.delete(id);
      if (!this.#saidLate.has(id)) {
        this.#saidLate.add(id);
        this.#context?.warn(
          'sticky-fallback',
          `sticky: worker ${id} did not accept within ${WAIT_FOR_ID_MS / 1000} s: the connections of its client addresses go to other workers until it does (said once)`,
          { worker: id, key: this.key, waitMs: WAIT_FOR_ID_MS },
        );
      }
      for (const { connection } of late) {
        this.#waitedOut.add(connection);
        this.#distribute(connection);
      }
    }
    if (next !== Infinity) this.#waitTimer = setTimeout(() => this.#waitRanOut(), Math.max(0, next - now)).unref();
  }

  /** The worker has nothing in flight: it takes its next connection, or waits among the free. */
  #release(worker: BalancedWorker): void {
    if (this.#strategy.pin) {
      const connection = this.#pinned.get(worker)?.shift();
      if (connection) this.#send(worker, connection);
      else this.#free.push(worker);
      return;
    }
    // The strategy chooses among all free workers (for rr, a queue only builds while none is
    // free, so the released worker takes the longest-waiting connection).
    this.#free.push(worker);
    this.#dispatchQueued();
  }

  /** Hands queued connections to free workers as long as the strategy picks one. */
  #dispatchQueued(): void {
    while (this.#queue.length > 0 && this.#free.length > 0) {
      const index = this.#strategy.pick(this.#free, this.#workers);
      if (index < 0) return;
      if (this.#holding(this.#free[index]!)) return;
      const match = this.#match(index);
      if (!match) return;
      const [worker] = this.#free.splice(match.worker, 1);
      const [connection] = this.#queue.splice(match.connection, 1);
      this.#send(worker!, connection!);
    }
  }

  /**
   * The free worker at `chosen` and the oldest queued connection it has not refused; failing that,
   * the longest-idle free worker that has not refused one (indexes in #free and #queue).
   */
  #match(chosen: number): { worker: number; connection: number } | null {
    for (const index of [chosen, ...this.#free.keys()]) {
      const worker = this.#free[index]!;
      const connection = this.#queue.findIndex((queued) => !this.#refusals.get(queued)?.has(worker));
      if (connection !== -1) return { worker: index, connection };
    }
    return null;
  }

  /** Whether the strategy keeps the queue for a busy worker a little longer; if so, retries after. */
  #holding(chosen: BalancedWorker): boolean {
    if (!this.#strategy.hold) return false;
    // Decide afresh: an ack or a new connection may have changed the picture.
    if (this.#holdTimer) clearTimeout(this.#holdTimer);
    this.#holdTimer = null;
    const busy: Array<{ worker: BalancedWorker; sentAt: number }> = [];
    for (const [worker, pending] of this.#inFlight) if (this.#workers.has(worker)) busy.push({ worker, sentAt: pending.sentAt });
    const ms = busy.length === 0 ? 0 : this.#strategy.hold(chosen, busy, performance.now());
    if (ms <= 0) return false;
    this.#holdTimer = setTimeout(() => {
      this.#holdTimer = null;
      this.#dispatchQueued();
    }, ms);
    return true;
  }

  #send(worker: BalancedWorker, connection: RawHandle): void {
    const id = ++this.#nextId;
    this.#inFlight.set(worker, { id, connection, sentAt: performance.now() });
    if (!worker.send({ cmd: 'NODE_clusterd:conn', id, key: this.key }, connection)) {
      // The channel is already closed: the worker is on its way out.
      this.#inFlight.delete(worker);
      this.#workers.delete(worker);
      this.#distribute(connection);
    }
  }
}
