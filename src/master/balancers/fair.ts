// fair (the default): workers accept for themselves from copies of one listening socket, so a
// connection costs the master nothing; the master only decides who may accept. Each worker accepts
// until its server holds its *limit* of open connections, then closes its copy (the kernel stops
// waking it) and says so; connections wait in the kernel's queue for the workers still polling.
// When every preferred worker is full, the master raises the limit by a small step and sends them a
// copy again, so a burst of keep-alive connections fills the workers in even steps. A worker that
// has dropped back below its limit asks for a copy. The cost is a few messages per limit crossed,
// never one per connection. Every LOAD_REPORT_MS the workers report the most and fewest connections
// they held, and the master resets the limit to fit (settledCap): an even share of the long-lived
// connections plus the swing of all the short-lived ones, so that a new connection per request stops
// nobody, and a cluster whose connections have closed meets the next burst with a small limit. A
// full worker that drops back says how many connections came and went meanwhile: when they were
// short-lived (a burst of new connections per request after an idle moment), the limit rises at
// once, about doubling per stop, rather than after the next report.
//
// Keep-alive connections stay where they landed, and a pool that never closes them would stay uneven
// for good after a restart, a scale-up or a rolling reload (each moves every connection off one
// worker). So at each tick a worker that held more than an even share plus slack all through its
// last report is asked to come down to it, ending connections after their response (keepLevels()):
// its clients reconnect, and the workers under the limit take them. The share is of the most the
// workers held together over the last 5 s, so that connections ended and not yet reopened do not
// lower it and end more. A worker far below even (a scale-up's: 8/8/0 is within slack from above)
// brings the others down to an even share, with their limit held there until it catches up
// (catchUpLevel()). Nothing is asked while the counts are within slack of even or while a
// worker's loop lags, and new connections per request never are (they hold nothing).
//
// A worker whose loop is blocked does not call accept() at all, so connections wait in the kernel's
// queue for the others from the first moment, without the master knowing yet; once its heartbeat has
// been silent for the stall threshold it is paused, and the limit no longer holds the others back.
// A loop that lags (held past LAGGING_MS lately, but turning) is seen by the worker itself, at the
// first late tick of its timer: it closes its copy and says `lagging`, and the master sends it one
// again only while no worker that keeps time can accept (all at the limit), and as before once it
// says it keeps time again. So it takes no new connection while the others can, yet still its share
// of a burst of keep-alive connections: pausing a lagging worker outright, on the lag p99 of its
// last sample, sent all of a CPU-bound load to the other worker a whole sample period late and put a
// whole keep-alive pool on one worker, which made the tails of (d) and (e) worse (BENCHMARKS.md,
// "Stall-aware"). A worker that is not ready (--wait-ready) or draining never holds a copy.
//
// A stop: the workers' copies close as they drain, and when the last one closes the kernel resets
// the connections still in its queue, each with its request sent: those that waited for busy workers
// (4-6 of 6 in an audit whose two workers were busy at the stop; `rr` served them all, from the
// master's own queue). So the master first pauses every worker, accepts what the kernel queued itself,
// until the queue is empty, stops the socket listening (for every copy: a worker whose loop is blocked
// still holds one, and connections that came meanwhile were queued for it, then reset; now they are
// refused, as under `rr`), and hands each connection it took to a worker as `rr` does (the worker's
// server takes it as one of its own); the workers hear the stop after that.
import { bindShared, heldSocketReply, stopListening } from './bind.js';
import { STALLED, healthRank } from './choose.js';
import { HELD_TICKS, OVERFLOW_AFTER_MS, catchUpLevel, churn, keepLevels, levelsDownTo, planAcceptors, settledCap, totalHeld, type AcceptorMode } from './fair-plan.js';
import type { BalancedWorker, Balancer, RawHandle } from './types.js';
import { LOAD_REPORT_MS, resumeAt, slack, type AcceptLimit, type AcceptorLoad, type AcceptorReport, type ListenQuery, type SockName } from '../../protocol.js';

/** The master's view of one worker on this socket. */
interface Acceptor {
  mode: AcceptorMode;
  /** Open connections of its server, as last reported (0 before any report). */
  connections: number;
  /** The most and fewest it held over its last reporting interval. */
  peak: number;
  low: number;
  /** It came back from `full` (said `under`) during the master's current interval. */
  cycled: boolean;
  /** churn() of its last report, or more where an `under` since showed more. */
  churn: number;
  /** Bumped by every accept, limit and pause sent; reports carry the last one the worker had. */
  epoch: number;
  /** The epoch of the last accept (the last copy sent). */
  acceptEpoch: number;
  /** The limit its current copy was given (undefined: none sent yet). */
  limit?: number | null;
  /** The level it was last asked to come down to (null: none asked, or stopped). */
  keep: number | null;
  /** Its loop was held past LAGGING_MS lately, as it said (`NODE_clusterd:lagging`). */
  lagging: boolean;
  /** The app's own maxConnections that stopped it below the limit, until it says `under` (null: none). */
  ceiling: number | null;
  /** Whether its last accept or limit said `overflow`. */
  overflow: boolean;
}

/** fair's health rank: whether the worker's loop is stalled now (a lagging one ranks with the others: planAcceptors holds it back). */
function stallRank(worker: BalancedWorker): number {
  return worker.load().stalled ? STALLED : 0;
}

export class FairBalancer implements Balancer {
  readonly key: string;
  readonly sockname: SockName;
  #handle: RawHandle | null;
  readonly #acceptors = new Map<BalancedWorker, Acceptor>();
  #cap = slack(0);
  /** What the preferred workers held together at each of the last HELD_TICKS ticks. */
  readonly #held: number[] = [];
  /** catchUpLevel() at the last tick: the limit of every preferred worker while one is far behind (null: none is). */
  #catchUp: number | null = null;
  readonly #timer: NodeJS.Timeout;
  /**
   * The socket came from systemd (socket activation), which keeps it listening for the next start:
   * the backlog it is listened on with, by the master and every worker (null: a socket of its own).
   */
  readonly #inheritedBacklog: number | null;
  /** Set by stopAccepting(): the master takes the queue, and the plan sends no copy any more. */
  #stopping = false;
  /** Connections the master accepted at a stop and sent to a worker, by id, until it answers. */
  readonly #handed = new Map<number, { worker: BalancedWorker; connection: RawHandle; refused: Set<BalancedWorker> }>();
  #nextId = 0;
  /** Told once the stop's queue is drained and every connection of it is settled. */
  #onHandedOver: (() => void) | null = null;
  /** Since when every preferred worker has been at its own maxConnections (null: not now), and the plan due then. */
  #atCeilingsSince: number | null = null;
  #overflowTimer: NodeJS.Timeout | null = null;

  private constructor(key: string, handle: RawHandle, sockname: SockName, inheritedBacklog: number | null) {
    this.key = key;
    this.#handle = handle;
    this.sockname = sockname;
    this.#inheritedBacklog = inheritedBacklog;
    this.#timer = setInterval(() => this.settle(), LOAD_REPORT_MS).unref();
  }

  /** Binds the address in the master without listening (the first worker's listen() does); throws a BindError. */
  static async open(query: ListenQuery): Promise<FairBalancer> {
    const { handle, sockname, inheritedBacklog } = bindShared(query);
    return new FairBalancer(query.key, handle, sockname, inheritedBacklog);
  }

  get size(): number {
    return this.#acceptors.size;
  }

  /** The limit workers share now (for tests and status). */
  get cap(): number {
    return this.#cap;
  }

  add(worker: BalancedWorker, seq: number): void {
    if (!this.#handle) return;
    // The copy that comes with the reply is listened on and closed at once: the socket then queues
    // connections from the first listen() on, and the worker accepts only once accept says so.
    worker.send(heldSocketReply(seq, 'fair', this.sockname, this.#inheritedBacklog), this.#handle);
    if (!this.#acceptors.has(worker)) this.#acceptors.set(worker, { mode: 'idle', connections: 0, peak: 0, low: 0, cycled: false, churn: 0, epoch: 0, acceptEpoch: 0, keep: null, lagging: false, ceiling: null, overflow: false });
    this.#plan();
  }

  remove(worker: BalancedWorker): void {
    // One that died with connections handed to it may have read from them: closed, not re-offered.
    if (worker.exited) {
      for (const [id, handed] of this.#handed) {
        if (handed.worker !== worker) continue;
        this.#handed.delete(id);
        handed.connection.close();
      }
      this.#checkHandedOver();
    }
    const acceptor = this.#acceptors.get(worker);
    if (!acceptor) return;
    this.#acceptors.delete(worker);
    // Draining: stop accepting now rather than when the shutdown reaches the server.
    if (acceptor.mode === 'accepting' && !worker.exited) worker.send({ cmd: 'NODE_clusterd:pause', key: this.key, epoch: acceptor.epoch + 1 });
    this.#plan();
  }

  activate(): void {
    this.#plan();
  }

  health(): void {
    this.#plan();
  }

  ack(worker: BalancedWorker, id: number, accepted: boolean): void {
    // Only a stop hands connections over; otherwise workers accept for themselves.
    const handed = this.#handed.get(id);
    if (!handed || handed.worker !== worker) return;
    this.#handed.delete(id);
    if (accepted) handed.connection.close();
    else {
      handed.refused.add(worker);
      this.#handOver(handed.connection, handed.refused);
    }
    this.#checkHandedOver();
  }

  /**
   * A stop's first step (see the top of this file): resolves once the kernel's queue has been taken
   * and every connection of it has reached a worker. From then on new connections are refused, even
   * while a worker whose loop is blocked holds its copy (stopListening(); but a socket systemd passed
   * keeps listening, and they wait for that worker, as they do where the native helper is missing).
   */
  stopAccepting(): Promise<void> {
    const handle = this.#handle;
    if (!handle || this.#stopping) return Promise.resolve();
    this.#stopping = true;
    for (const [worker, acceptor] of this.#acceptors) {
      if (acceptor.mode === 'accepting' && !worker.exited) worker.send({ cmd: 'NODE_clusterd:pause', key: this.key, epoch: ++acceptor.epoch });
      acceptor.mode = 'paused';
    }
    let accepted = 0;
    handle.onconnection = (status, connection) => {
      if (status !== 0) return;
      accepted++;
      this.#handOver(connection, new Set());
    };
    // A backlog of 0 from here on (for every copy: one socket): the kernel queues no more new
    // connections (their SYNs are dropped, and the client's next one is refused once the socket stops
    // listening), while those already queued stay, for the master to take. Under load a stop took
    // connections as fast as they came, and the last ones queued were reset when it stopped listening
    // (2-15 in 3 of 13 audit runs over TLS). Not for a socket systemd passed, which queues for the next
    // start, with its own backlog.
    if (handle.listen!(this.#inheritedBacklog ?? 0) !== 0) return Promise.resolve();
    return new Promise((resolve) => {
      // Empty once a turn of the loop, whose poll phase accepts whatever is queued, takes nothing more.
      let seen = -1;
      const drained = (): void => {
        if (accepted !== seen) {
          seen = accepted;
          setImmediate(drained);
          return;
        }
        handle.onconnection = null;
        if (this.#inheritedBacklog === null) stopListening(handle);
        handle.close();
        this.#handle = null;
        this.#onHandedOver = resolve;
        this.#checkHandedOver();
      };
      setImmediate(drained);
    });
  }

  /** Sends `connection` to a worker that may take it and has not refused it (the least handed first); closes it when none is left. */
  #handOver(connection: RawHandle, refused: Set<BalancedWorker>): void {
    const load = new Map<BalancedWorker, number>();
    for (const { worker } of this.#handed.values()) load.set(worker, (load.get(worker) ?? 0) + 1);
    const candidates = [...this.#acceptors.keys()].filter((worker) => worker.accepting && !worker.exited && !refused.has(worker));
    candidates.sort((a, b) => (load.get(a) ?? 0) - (load.get(b) ?? 0));
    for (const worker of candidates) {
      const id = ++this.#nextId;
      if (!worker.send({ cmd: 'NODE_clusterd:conn', id, key: this.key }, connection)) continue;
      this.#handed.set(id, { worker, connection, refused });
      return;
    }
    connection.close();
  }

  #checkHandedOver(): void {
    if (this.#onHandedOver === null || this.#handed.size > 0) return;
    const done = this.#onHandedOver;
    this.#onHandedOver = null;
    done();
  }

  report(worker: BalancedWorker, message: AcceptorReport | AcceptorLoad): void {
    const acceptor = this.#acceptors.get(worker);
    if (!acceptor) return;
    acceptor.connections = message.connections;
    if (message.cmd === 'NODE_clusterd:load') {
      // Each report is the worker's own last interval, and the latest one stands until the next: a
      // worker sends none while nothing changes (an idle one sent its zeros once). Reset at the
      // master's tick instead, churn read 0 whenever two ticks fell between two reports (both every
      // LOAD_REPORT_MS, on clocks that drift), and the limit of a cluster under a new connection per
      // request collapsed to an even share of nothing (measured: 129 to 21 mid-load), stopping
      // every worker at it.
      acceptor.peak = message.peak;
      acceptor.low = message.low;
      acceptor.churn = churn(message);
      // One held by its own maxConnections (or accepting past it) may have room now.
      if (acceptor.ceiling !== null) this.#plan();
      return;
    }
    acceptor.peak = Math.max(acceptor.peak, message.connections);
    // The worker closed its copy (full, or lagging). Unless a newer copy went out since (an accept
    // after the epoch it had), it has none now, whatever limits were sent in between.
    const closedCopy = acceptor.mode === 'accepting' && message.epoch >= acceptor.acceptEpoch;
    if (message.cmd === 'NODE_clusterd:lagging') {
      acceptor.lagging = message.lagging;
      if (message.lagging && closedCopy) acceptor.mode = 'paused';
    } else if (message.cmd === 'NODE_clusterd:full') {
      if (closedCopy) {
        acceptor.mode = 'full';
        acceptor.ceiling = message.ceiling;
      }
    } else {
      acceptor.ceiling = null;
      acceptor.cycled = true;
      acceptor.peak = Math.max(acceptor.peak, message.peak);
      // Connections that came and went while it was full: short-lived ones, which a limit inside
      // their swing only stops. Waiting for the next report to raise the limit cost a burst of new
      // connections after an idle moment (the limit back at its smallest) dozens of stops per
      // worker in that interval; raised now, a few.
      acceptor.churn = Math.max(acceptor.churn, churn(message));
      this.#cap = Math.max(this.#cap, this.#settledCap() ?? 0);
    }
    this.#plan();
  }

  close(): void {
    clearInterval(this.#timer);
    if (this.#overflowTimer) clearTimeout(this.#overflowTimer);
    this.#handle?.close();
    this.#handle = null;
    for (const { connection } of this.#handed.values()) connection.close();
    this.#handed.clear();
    this.#onHandedOver?.();
    this.#onHandedOver = null;
    this.#acceptors.clear();
  }

  /** Applies planAcceptors(): a copy to each worker that should accept and has none, a pause, or a new limit. */
  #plan(): void {
    if (!this.#handle || this.#stopping) return;
    const workers = [...this.#acceptors.keys()];
    const acceptors = [...this.#acceptors.values()];
    const plan = planAcceptors(
      workers.map((worker, index) => ({
        mode: acceptors[index]!.mode,
        connections: acceptors[index]!.connections,
        eligible: worker.accepting && !worker.exited,
        rank: stallRank(worker),
        lagging: acceptors[index]!.lagging,
        ceiling: acceptors[index]!.ceiling,
      })),
      this.#catchUp === null ? this.#cap : Math.min(this.#cap, this.#catchUp),
    );
    this.#cap = plan.cap;
    let { modes, overflow } = plan;
    if (!overflow) this.#atCeilingsSince = null;
    else {
      const now = performance.now();
      this.#atCeilingsSince ??= now;
      const wait = this.#atCeilingsSince + OVERFLOW_AFTER_MS - now;
      if (wait > 0) {
        modes = modes.map((mode) => (mode === 'accepting' ? 'full' : mode));
        overflow = false;
        this.#overflowTimer ??= setTimeout(() => {
          this.#overflowTimer = null;
          this.#plan();
        }, wait).unref();
      }
    }
    workers.forEach((worker, index) => this.#apply(worker, acceptors[index]!, modes[index]!, plan.limit, overflow));
  }

  #apply(worker: BalancedWorker, acceptor: Acceptor, mode: AcceptorMode, limit: number | null, overflow: boolean): void {
    const terms = (): AcceptLimit => ({ epoch: ++acceptor.epoch, limit, resumeAt: limit === null ? 0 : resumeAt(limit), overflow });
    const changed = acceptor.limit !== limit || acceptor.overflow !== overflow;
    // One that accepts past what the master last heard stays accepting: it stops itself at its limit.
    if (mode === 'accepting' || (mode === 'full' && acceptor.mode === 'accepting')) {
      if (acceptor.mode !== 'accepting') {
        worker.send({ cmd: 'NODE_clusterd:accept', key: this.key, ...terms() }, this.#handle!);
        acceptor.acceptEpoch = acceptor.epoch;
      } else if (changed) {
        worker.send({ cmd: 'NODE_clusterd:limit', key: this.key, ...terms() });
      }
      acceptor.limit = limit;
      acceptor.overflow = overflow;
      acceptor.mode = 'accepting';
      return;
    }
    if (acceptor.mode === 'accepting') {
      worker.send({ cmd: 'NODE_clusterd:pause', key: this.key, epoch: ++acceptor.epoch });
    } else if (mode === 'full' && changed) {
      // A full worker learns the new limit too, so that it asks again at the right point.
      worker.send({ cmd: 'NODE_clusterd:limit', key: this.key, ...terms() });
      acceptor.limit = limit;
      acceptor.overflow = overflow;
    }
    acceptor.mode = mode;
  }

  /** Sets the cap to what the preferred workers held over their last reports (settledCap()): every LOAD_REPORT_MS. */
  settle(): void {
    const cap = this.#settledCap();
    for (const [, acceptor] of this.#acceptors) acceptor.cycled = false;
    if (cap !== null && cap !== this.#cap) {
      this.#cap = cap;
      this.#plan();
    }
    this.#endSurplus();
  }

  /**
   * Asks each preferred worker that held more than an even share plus slack all through its last
   * report to come down to that level (keepLevels()), and one that no longer did to stop. The worker
   * counts the connections it has already told, so an ask repeated, or resting on a report that
   * came before what it did, ends nothing more; only changes are sent.
   */
  #endSurplus(): void {
    const eligible = this.#eligible();
    const preferred = this.#preferred(eligible);
    // Moving connections needs calm: a reconnect lands where the kernel's accept race puts it, and
    // behind a loop that lags (p99 past 100 ms) its requests wait out the blocks. While any of them
    // lags nothing is asked, and an ask still out is stopped. (On (e), whose one worker blocks
    // 200 ms a second, asks moved 13-14 of the 64 pooled connections in three of seven rounds, and
    // those three had the run's worst p99s.)
    // One at its server's own maxConnections takes no more: the share is the others'. (Counted in,
    // the others were asked down to a share it could never take, their clients reconnected to them
    // again, and keep-alive was lost: 8,000 new connections in 15 s for a pool of 40.)
    const balanced = preferred.filter(([, acceptor]) => acceptor.ceiling === null);
    const loads = balanced.map(([, acceptor]) => acceptor);
    this.#held.push(totalHeld(loads));
    if (this.#held.length > HELD_TICKS) this.#held.shift();
    const calm = preferred.every(([worker]) => healthRank(worker.load()) === 0);
    const held = Math.max(...this.#held);
    let keeps = calm ? keepLevels(loads, held) : [];
    // Within slack of even from above, but one far behind (a scale-up): all come down to even.
    const catchUp = calm && keeps.every((keep) => keep === null) ? catchUpLevel(loads, held, this.#catchUp !== null) : null;
    if (catchUp !== null) keeps = levelsDownTo(loads, catchUp);
    const levels = new Map(keeps.map((keep, index) => [balanced[index]![1], keep]));
    if (catchUp !== this.#catchUp) {
      this.#catchUp = catchUp;
      this.#plan();
    }
    // The master alone keeps what each worker was asked: one that is no longer preferred (stalled,
    // draining, exited) is told to stop, whatever else it was sent meanwhile.
    for (const [worker, acceptor] of this.#acceptors) {
      const keep = levels.get(acceptor) ?? null;
      if (keep === acceptor.keep) continue;
      acceptor.keep = keep;
      if (!worker.exited) worker.send({ cmd: 'NODE_clusterd:end-connections', key: this.key, keep });
    }
  }

  /** The workers that may accept at all (ready, not draining, alive), with their acceptors. */
  #eligible(): Array<[BalancedWorker, Acceptor]> {
    return [...this.#acceptors].filter(([worker]) => worker.accepting && !worker.exited);
  }

  /** Of `eligible`, those of the best health rank. */
  #preferred(eligible: Array<[BalancedWorker, Acceptor]>): Array<[BalancedWorker, Acceptor]> {
    const best = Math.min(...eligible.map(([worker]) => stallRank(worker)));
    return eligible.filter(([worker]) => stallRank(worker) === best);
  }

  /** settledCap() of the preferred workers' interval so far; null with fewer than two eligible workers. */
  #settledCap(): number | null {
    const eligible = this.#eligible();
    if (eligible.length < 2) return null;
    const preferred = this.#preferred(eligible).map(([, acceptor]) => acceptor);
    return settledCap(
      preferred.map(({ peak, low, churn, connections, cycled }) => ({ peak: Math.max(peak, connections), low: Math.min(low, connections), churn, cycled })),
      this.#cap,
    );
  }
}

