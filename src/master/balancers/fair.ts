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
import type { BalancedWorker, Balancer, RawHandle } from './types.js';
import { LOAD_REPORT_MS, resumeAt, resumeBelowCeiling, slack, type AcceptLimit, type AcceptorLoad, type AcceptorReport, type ListenQuery, type SockName } from '../../protocol.js';

/** What a worker is doing with its copy of the socket, as far as the master knows. */
export type AcceptorMode = 'idle' | 'accepting' | 'full' | 'paused';

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

/** One worker as planAcceptors() sees it. */
export interface AcceptorView {
  mode: AcceptorMode;
  connections: number;
  /** May be given connections at all: ready (or listening, without --wait-ready), not draining. */
  eligible: boolean;
  /** 0: its loop turns; STALLED: it has not turned for the stall threshold. */
  rank: number;
  /** Its loop lags (held past LAGGING_MS lately): it accepts only while no other preferred worker can. */
  lagging?: boolean;
  /** Its server's own maxConnections, which stopped it below the limit (null or absent: none did). */
  ceiling?: number | null;
}

export interface AcceptorPlan {
  /** What each worker should be doing, in the order given. */
  modes: AcceptorMode[];
  /** The limit for the workers that accept; null when only one worker is preferred. */
  limit: number | null;
  /** The shared limit, raised when every preferred worker was full. */
  cap: number;
  /** Every preferred worker is at its server's own maxConnections: they accept past it, and Node refuses. */
  overflow: boolean;
}

export { resumeAt, slack };

/**
 * How many of the master's ticks the share of keepLevels() remembers the most connections held
 * together: 5 s, Node's default keepAliveTimeout (a client idle longer loses its connection anyway).
 */
export const HELD_TICKS = Math.ceil(5_000 / LOAD_REPORT_MS);

/**
 * The level each preferred worker should come down to by ending connections after their response
 * (so that the clients reconnect to the others), or null: an even share of all of theirs plus slack,
 * for a worker that held more than that all through its last report. Fewer than two: none.
 *
 * `held`: the most they held together lately. A connection that was ended is out of every count
 * until its client sends the next request on a new one, so counting only what they hold now, the
 * share dips after every ask (A 14, B 0 while A's ended 10 reconnect: down to 9), and the worker is
 * asked again, past even, by connections still on their way (measured in CI: 5-8 more ended after
 * the pool was even).
 */
export function keepLevels(loads: ReadonlyArray<{ connections: number; low: number }>, held = 0): Array<number | null> {
  if (loads.length < 2) return loads.map(() => null);
  const share = Math.ceil(Math.max(held, totalHeld(loads)) / loads.length);
  return levelsDownTo(loads, share + slack(share));
}

/** `level` for each worker that held more than it all through its last report, else null. */
function levelsDownTo(loads: ReadonlyArray<{ connections: number; low: number }>, level: number): Array<number | null> {
  return loads.map(({ connections, low }) => (Math.min(low, connections) > level ? level : null));
}

/**
 * When keepLevels() asks nothing but a preferred worker is far behind (even at its most, it held
 * fewer than an even share less slack): the even share, which every worker that held more all
 * through its last report is asked down to, and which the limit of all drops to meanwhile, so that
 * the ended connections reopen on the worker behind. Otherwise null.
 *
 * It starts only from a settled pool (as many held now as lately, and one over the share all
 * along), not while connections an ask ended are still on their way, and goes on (`active`) while
 * one is behind, so the limit holds until the connections ended have reopened.
 *
 * Slack above even alone left a scale-up with nothing to move: 16 on 2 workers, scale 3, stayed
 * 8/8/0 for good (8 is an even 6 plus slack). Measured from below too, the pool spreads to about
 * 6/6/4, which no rule asks to change: the share plus slack from above, less slack from below.
 */
export function catchUpLevel(loads: ReadonlyArray<{ connections: number; low: number; peak: number }>, held = 0, active = false): number | null {
  if (loads.length < 2) return null;
  const total = Math.max(held, totalHeld(loads));
  const share = Math.ceil(total / loads.length);
  const behind = loads.some(({ connections, peak }) => Math.max(connections, peak) < Math.floor(total / loads.length) - slack(share));
  const settled = totalHeld(loads) >= total && loads.some(({ connections, low }) => Math.min(low, connections) > share);
  return behind && (active || settled) ? share : null;
}

function totalHeld(loads: ReadonlyArray<{ connections: number }>): number {
  return loads.reduce((sum, { connections }) => sum + connections, 0);
}

/**
 * How long every preferred worker must have been at its own maxConnections before they accept past
 * it (overflow, their servers refusing): a worker whose connection closes soon (a connection per
 * request) has room again before any is refused, and meanwhile new connections wait in the queue.
 * During an overflow a worker back at its own limit may still win a connection before it hears the
 * overflow is over (and its server refuses it): at 100 ms, a loaded machine's slow requests started
 * overflows that cost 1 connection of 30 made one at a time with a place free.
 */
export const OVERFLOW_AFTER_MS = 500;

/** The largest limit ever set, whatever the connection counts (a bound, not a goal). */
const MAX_CAP = 2 ** 30;

/**
 * Decides who accepts. Not eligible: idle. Eligible but of a worse health rank than the best
 * eligible worker: paused. Among the preferred: one alone accepts without a limit; several share
 * `cap`, and one that is not accepting gets a copy once it holds no more than resumeAt(cap). A
 * worker joining brings cap down to an even share plus slack. When none of them would accept, cap
 * rises by a step (and at least to an even share plus slack), so a burst fills every preferred
 * worker in turn.
 *
 * A worker stopped by its server's own maxConnections (`ceiling`, below the limit) counts as full
 * until it says `under`, and no raise helps it: the others take the connections Node would have
 * refused there. Once every preferred worker is at its own, they all accept (`overflow`), and their
 * servers refuse connections as Node's does, rather than leave them waiting in the kernel's queue.
 */
export function planAcceptors(views: readonly AcceptorView[], cap: number): AcceptorPlan {
  const eligible = views.filter((view) => view.eligible);
  // The best rank among the workers with room: one at its server's own maxConnections refuses what it
  // takes, where a worker ranked below it (its loop stalled a moment) takes it once it turns. Only
  // when none has room, the best of all, which then overflow.
  const roomy = eligible.filter((view) => !atOwnCeiling(view));
  const best = eligible.length === 0 ? 0 : Math.min(...(roomy.length > 0 ? roomy : eligible).map((view) => view.rank));
  const preferred = (view: AcceptorView) => view.eligible && view.rank === best;
  const count = eligible.filter(preferred).length;
  if (count <= 1) {
    // One worker alone accepts without a limit, and stops at its server's own maxConnections, if any:
    // there, with no other worker that has room, it accepts past it, and Node refuses, as one process does.
    const overflow = views.some((view) => preferred(view) && atOwnCeiling(view));
    return { modes: views.map((view) => (!view.eligible ? 'idle' : preferred(view) ? 'accepting' : 'paused')), limit: null, cap, overflow };
  }
  const total = views.filter(preferred).reduce((sum, view) => sum + view.connections, 0);
  const share = Math.ceil(total / count);
  // A worker joins (started, ready, replaced): the others' limit drops to an even share, so that
  // new connections go to it first rather than wherever the kernel sends them.
  if (views.some((view) => preferred(view) && view.mode === 'idle')) cap = Math.min(cap, share + slack(share));
  // The limit a worker is held to: the shared one, or its server's own maxConnections below it.
  const own = (view: AcceptorView, limit: number): number => (view.ceiling != null && view.ceiling < limit ? view.ceiling : limit);
  const resume = (view: AcceptorView, limit: number): number => (view.ceiling != null && view.ceiling < limit ? resumeBelowCeiling(view.ceiling) : resumeAt(limit));
  const decide = (limit: number): AcceptorMode[] =>
    views.map((view) => {
      if (!view.eligible) return 'idle';
      if (!preferred(view)) return 'paused';
      if (view.mode === 'accepting' && view.connections < own(view, limit)) return 'accepting';
      return view.connections <= resume(view, limit) ? 'accepting' : 'full';
    });
  // Whether raising the limit past `limit` lets any preferred worker accept (not one at its own maxConnections).
  const raises = (limit: number): boolean => views.some((view) => preferred(view) && (view.ceiling == null || view.ceiling > limit));
  let modes = decide(cap);
  // Every preferred worker at the limit: raise it a step, and a worker below the new limit takes it.
  // Not by its resume point: figured from the larger limit it can fall below what a worker holds (32
  // held, a limit of 34 resumes at 31), and then every worker stayed full and new connections waited
  // in the kernel's queue for as long as the pool kept its connections (any pool past 64 on 2 workers).
  while (!modes.includes('accepting') && cap < MAX_CAP && raises(cap)) {
    cap = Math.min(MAX_CAP, Math.max(cap + slack(cap), share + slack(share)));
    const limit = cap;
    modes = views.map((view) => (!view.eligible ? 'idle' : !preferred(view) ? 'paused' : view.connections < own(view, limit) ? 'accepting' : 'full'));
  }
  const overflow = !modes.includes('accepting');
  if (overflow) modes = views.map((view) => (!view.eligible ? 'idle' : !preferred(view) ? 'paused' : 'accepting'));
  // A lagging worker waits while one whose loop keeps time can accept; it counts in the share and
  // takes its turn at the limit like the others, so a burst of keep-alive connections still splits
  // evenly (the others stop at the limit, then it accepts).
  if (views.some((view, index) => !view.lagging && modes[index] === 'accepting')) {
    modes = modes.map((mode, index) => (views[index]!.lagging && mode === 'accepting' ? 'paused' : mode));
  }
  return { modes, limit: cap, cap, overflow };
}

/** Whether the worker holds its server's own maxConnections (it said so), and so takes no connection without refusing it. */
function atOwnCeiling(view: AcceptorView): boolean {
  return view.ceiling != null && view.connections >= view.ceiling;
}

/** What settledCap() needs of a preferred worker's last interval. */
export interface IntervalLoad {
  /** The most and fewest connections it held. */
  peak: number;
  low: number;
  /**
   * Its short-lived connections: the most, over its reports in the interval, of the swing between
   * fewest and most that were also accepted and closed within the report's own interval (churn()).
   */
  churn: number;
  /** It stopped at its limit and asked again within the interval. */
  cycled: boolean;
}

/**
 * The cap that fits what the preferred workers held over the last interval: an even share of the
 * connections each kept all along (the lows: long-lived ones, which decide fairness), plus the
 * swing of short-lived connections, all workers' together (they come and go, and any worker may
 * get all of them while the others wait for a core: a limit inside that swing only stops a worker
 * that runs while one that does not holds the queue, and evens nothing out), plus slack. Only
 * churn counts as swing: connections that arrived and stayed (a burst of keep-alive connections,
 * spread by the limit's steps) are not short-lived, nor are ones that closed long after they came,
 * and a cap raised by them mid-burst would let one worker take the rest of the burst. A worker that
 * mostly held short-lived connections and still cycled at the limit swung further than it could
 * show: its swing counts twice, so the cap clears it in an interval or two.
 */
export function settledCap(loads: readonly IntervalLoad[], cap: number): number {
  const count = Math.max(1, loads.length);
  const share = Math.ceil(loads.reduce((sum, { low }) => sum + low, 0) / count);
  const swing = loads.reduce((sum, { peak, low, churn, cycled }) => {
    const seen = Math.max(0, churn);
    return sum + (cycled && peak >= cap && low <= peak / 2 ? 2 * seen : seen);
  }, 0);
  return Math.min(MAX_CAP, share + swing + slack(share));
}

/**
 * The short-lived connections one load report shows: its swing between fewest and most, as far as
 * connections both arrived and left within its interval (a burst that stayed, or the end of
 * connections that came long before, is not churn).
 */
export function churn({ peak, low, accepted, closed }: Pick<AcceptorLoad, 'peak' | 'low' | 'accepted' | 'closed'>): number {
  return Math.max(0, Math.min(peak - low, accepted, closed));
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

