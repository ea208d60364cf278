// `fair`, the worker's half (the master's is src/master/balancers/fair.ts). Node's server gets a
// stand-in listening handle; underneath, the worker holds at most one copy of the master's socket
// and accepts from it while the master allows, which costs no message per connection. Once the
// server holds its limit of open connections the copy is closed, so the kernel stops waking this
// process and queues connections for the others, and the master hears `full` once. Closing a
// connection is noticed in the server's own `_emitCloseIfDrained` (net.Socket#_destroy calls it
// after `_connections--`), so nothing is added per connection; back down to the resume point, the
// worker says `under` and the master sends a copy again when it wants this worker to accept.
//
// The limit stops new connections, but keep-alive ones stay where they landed, and a client pool that
// never closes its connections stays uneven for good: after a restart, a scale-up, or a rolling reload,
// which moves every connection off each worker in turn. When the master sees a worker hold more than
// an even share plus slack all through its last report, it asks it to come down to that level: while
// the server holds more (not counting connections already told), HTTP/1 responses that would keep
// their connection open say `Connection: close` (asked per response in servers.ts), and the clients'
// next requests open new connections, which the workers under their limit take. Nothing is cut
// mid-request; nothing is asked while the counts are even.
//
// The app's own `server.maxConnections` is a limit too: Node refuses a connection past it, so a worker
// there closes its copy as at the limit and says so (`ceiling`), and the others take what this one
// would have refused; once every worker is at its own, the master says `overflow` and they accept
// again, their servers refusing as Node's would.
//
// A loop that lags (a tick of the worker's shared timer LAGGING_MS late) closes its copy at once and
// says `lagging`; the master sends one again only while no worker that keeps time can accept, and
// once the worker says it has kept time for LAG_RECOVERED_MS (src/master/balancers/fair.ts).
//
// libuv cannot stop polling a listening socket without closing it (uv_read_stop does not apply to
// listening handles: readStart() on one fails with ENOTCONN), hence a fresh copy per resume.
import type net from 'node:net';
import { constants as osConstants } from 'node:os';
import * as channel from './channel.js';
import { atOwnLimit, ceilingOf, kEndsConnection, standInSockname } from './servers.js';
import { LAG_RECOVERED_MS, LAGGING_MS, LOAD_REPORT_MS, resumeBelowCeiling, type AcceptFrom, type AcceptLimit, type EndConnections, type PauseAccepting, type SetLimit, type SockName } from '../protocol.js';
import { DEFAULT_RESOLUTION_MS } from '../loop/sampler.js';
import { every } from '../loop/ticker.js';
import type { RawHandle } from './listen.js';

/** Node's own per-server connection count, the hook its sockets call after lowering it, and ours per response. */
type CountedServer = net.Server & { _connections: number; _emitCloseIfDrained: () => void; [kEndsConnection]?: (socket: net.Socket) => boolean };

const acceptors = new Map<string, Acceptor>();
/** The acceptor of each server's listen now (its connections' closes are counted there). */
const current = new WeakMap<CountedServer, Acceptor>();
let reporter: NodeJS.Timeout | null = null;
let stopLagWatch: (() => void) | null = null;
/** When the lag watch last saw a late tick, while the loop lags; null while it keeps time. */
let laggedAt: number | null = null;
/** What accept() on a socket that no longer listens fails with (libuv's negative errno). */
const UV_EINVAL = -osConstants.errno.EINVAL;
/** The lag watch's period: the loop-delay probe's, so that the two share their ticks. */
const LAG_WATCH_MS = DEFAULT_RESOLUTION_MS;

/** Routes the master's accept, limit and pause messages to the acceptor of their key. */
export function installAcceptorChannel(): void {
  channel.on('NODE_clusterd:accept', (message: AcceptFrom, handle) => {
    const acceptor = acceptors.get(message.key);
    if (acceptor) acceptor.accept(message, handle as RawHandle);
    else (handle as RawHandle | undefined)?.close();
  });
  channel.on('NODE_clusterd:limit', (message: SetLimit) => acceptors.get(message.key)?.setLimit(message));
  channel.on('NODE_clusterd:pause', (message: PauseAccepting) => acceptors.get(message.key)?.pause(message.epoch));
  channel.on('NODE_clusterd:end-connections', (message: EndConnections) => acceptors.get(message.key)?.endConnections(message.keep));
}

/**
 * A connection the master accepted for a `fair` key and handed over (at a stop, the connections the
 * kernel queued for busy workers): the server takes it as one it accepted, unless it is closing or at
 * its own maxConnections (false: the master offers it to another worker).
 */
export function takeConnection(key: string, connection: RawHandle): boolean {
  return acceptors.get(key)?.take(connection) ?? false;
}

/**
 * The handle Node's server gets for a `fair` key: `copy` (the socket that came with the listen
 * reply) is listened on, which puts the socket in the listening state for good, then closed until
 * the master says accept.
 */
export function acceptorHandle(server: net.Server, key: string, sockname: SockName | null, copy: RawHandle, release: () => void, inheritedBacklog?: number): RawHandle {
  const acceptor = new Acceptor(server as CountedServer, key, sockname, copy, release, inheritedBacklog);
  acceptors.set(key, acceptor);
  reporter ??= setInterval(reportLoads, LOAD_REPORT_MS).unref();
  stopLagWatch ??= watchLag();
  // A server that starts listening while the loop lags starts out lagging too.
  if (laggedAt !== null) acceptor.lagged(true);
  return acceptor.handle;
}

/**
 * Watches the loop for lag on the worker's shared timer (every tick, stretched or not): a tick
 * LAGGING_MS later than due means the loop was held that long, and every acceptor stops accepting
 * and says so; once the ticks have come on time for LAG_RECOVERED_MS, they say that too. A loop that
 * is blocked right now is the master's to see (its heartbeat stops): this is the loop that turns,
 * but slowly.
 */
function watchLag(): () => void {
  laggedAt = null;
  // A late tick always calls this (it is due after any wait longer than its period).
  return every(
    LAG_WATCH_MS,
    (now, { lateMs }) => {
      if (lateMs >= LAGGING_MS) {
        if (laggedAt === null) for (const acceptor of acceptors.values()) acceptor.lagged(true);
        laggedAt = now;
      } else if (laggedAt !== null && now - laggedAt >= LAG_RECOVERED_MS) {
        laggedAt = null;
        for (const acceptor of acceptors.values()) acceptor.lagged(false);
      }
    },
    { stretch: true },
  );
}

function terms({ epoch, limit, resumeAt, overflow }: AcceptLimit): AcceptLimit {
  return { epoch, limit, resumeAt, overflow };
}


function reportLoads(): void {
  for (const acceptor of acceptors.values()) acceptor.reportLoad();
}

class Acceptor {
  readonly handle: RawHandle;
  readonly #server: CountedServer;
  readonly #key: string;
  #copy: RawHandle | null;
  #backlog = 511;
  /** A socket systemd passed: every copy is listened on with its own backlog, never the app's. */
  readonly #inheritedBacklog: number | undefined;
  #listening = false;
  #open = true;
  #terms: AcceptLimit = { epoch: 0, limit: null, resumeAt: 0, overflow: false };
  /** Closed at the limit and told the master; `asked`: said `under` since. */
  #full = false;
  /** The server's own maxConnections, when that (not the limit) closed the copy. */
  #ceiling: number | null = null;
  /** Under `overflow`: said `under` since, once the server had room below its maxConnections again. */
  #roomSaid = false;
  #asked = false;
  #peak = 0;
  #low = 0;
  /** Connections accepted and closed since the last report. */
  #accepted = 0;
  #closed = 0;
  #reported = '';
  #keepAlive: NodeJS.Timeout | null = null;
  /** End connections while the server holds more than this (the master's ask, until it says otherwise); null: none. */
  #keep: number | null = null;
  /** Connections told `Connection: close` that have not closed yet. */
  #ending = 0;

  constructor(server: CountedServer, key: string, sockname: SockName | null, copy: RawHandle, release: () => void, inheritedBacklog?: number) {
    this.#server = server;
    this.#inheritedBacklog = inheritedBacklog;
    this.#key = key;
    this.#copy = copy;
    // Node lowers _connections, then calls this: the one place a closing connection is seen for free.
    // Wrapped once per server, for whichever acceptor serves its listen now (a server closed and
    // listened again gets a new one; a wrapper each time would chain them all, and keep them).
    if (!current.has(server)) {
      const emitCloseIfDrained = server._emitCloseIfDrained;
      server._emitCloseIfDrained = function (this: CountedServer) {
        const acceptor = current.get(this);
        if (acceptor) acceptor.#connectionClosed();
        emitCloseIfDrained.call(this);
      };
    }
    current.set(server, this);
    server[kEndsConnection] = (socket) => this.#endsConnection(socket);
    // Like a real listening socket, the handle keeps the process alive until closed or unref'd,
    // whether or not a copy is open under it (copies are always unref'd).
    const ref = (): void => {
      this.#keepAlive ??= setInterval(() => {}, 2 ** 31 - 1);
    };
    const unref = (): void => {
      if (this.#keepAlive) clearInterval(this.#keepAlive);
      this.#keepAlive = null;
    };
    this.handle = {
      listen: (backlog) => {
        this.#backlog = this.#inheritedBacklog ?? backlog;
        this.#listening = true;
        const copy = this.#copy;
        if (!copy) return 0;
        const error = copy.listen!(this.#backlog);
        // The first copy only puts the socket in the listening state: accept comes later.
        this.#closeCopy();
        return error;
      },
      getsockname: standInSockname(sockname, () => this.#open),
      ref,
      unref,
      close: (done) => {
        if (!this.#open) return;
        this.#open = false;
        unref();
        this.#closeCopy();
        acceptors.delete(key);
        if (acceptors.size === 0 && reporter) {
          clearInterval(reporter);
          reporter = null;
          stopLagWatch?.();
          stopLagWatch = null;
        }
        release();
        channel.send({ cmd: 'NODE_clusterd:close', key });
        if (done) process.nextTick(done);
      },
    };
    ref();
  }

  /** The master wants this worker to accept, from the copy that came with the message. */
  accept(message: AcceptFrom, copy: RawHandle): void {
    if (!this.#open || !this.#listening || this.#copy) {
      // Closing, or still accepting from an earlier copy (a resume crossed a report): keep one.
      copy?.close();
      if (this.#open && this.#copy) this.setLimit(message);
      return;
    }
    this.#terms = terms(message);
    this.#roomSaid = false;
    this.#full = false;
    this.#asked = false;
    this.#copy = copy;
    copy.onconnection = (status, connection) => this.#onConnection(status, connection);
    copy.unref?.();
    const error = copy.listen!(this.#backlog);
    if (error !== 0) {
      this.#closeCopy();
      return;
    }
    this.#checkLimit();
  }

  setLimit(message: AcceptLimit): void {
    this.#terms = terms(message);
    this.#roomSaid = false;
    if (this.#copy) this.#checkLimit();
    else if (this.#full) {
      this.#asked = false;
      this.#askAgainIfUnder();
    }
  }

  /**
   * The loop was held past LAGGING_MS (`true`): stop accepting and tell the master, which sends a
   * copy again while no other worker can take connections; or it keeps time again (`false`).
   */
  lagged(lagging: boolean): void {
    if (!this.#open) return;
    // (Before listen() the copy is the one that puts the socket in the listening state: kept.)
    if (lagging && this.#listening) this.#closeCopy();
    channel.send({ cmd: 'NODE_clusterd:lagging', key: this.#key, epoch: this.#terms.epoch, connections: this.#server._connections, lagging });
  }

  /** takeConnection(): the server's, as if accepted from a copy. */
  take(connection: RawHandle): boolean {
    const onconnection = this.handle.onconnection;
    if (!this.#open || !onconnection || atOwnLimit(this.#server)) return false;
    onconnection.call(this.handle, 0, connection);
    this.#accepted++;
    return true;
  }

  pause(epoch: number): void {
    this.#terms = { ...this.#terms, epoch };
    this.#full = false;
    this.#closeCopy();
  }

  reportLoad(): void {
    // The app raised (or dropped) the maxConnections this worker stopped at: it asks again by the new one.
    if (this.#full && this.#ceiling !== null) {
      const max = ceilingOf(this.#server);
      if (max === null || max > this.#ceiling) {
        this.#ceiling = this.#ceilingBelowLimit(max);
        this.#askAgainIfUnder();
      }
    }
    const connections = this.#server._connections;
    const peak = Math.max(this.#peak, connections);
    const low = Math.min(this.#low, connections);
    const accepted = this.#accepted;
    const closed = this.#closed;
    const report = `${connections}:${peak}:${low}:${accepted}:${closed}`;
    this.#peak = connections;
    this.#low = connections;
    this.#accepted = 0;
    this.#closed = 0;
    if (report === this.#reported) return;
    this.#reported = report;
    channel.send({ cmd: 'NODE_clusterd:load', key: this.#key, connections, peak, low, accepted, closed });
  }

  #onConnection(status: number, connection: RawHandle): void {
    // The master stopped the socket listening (a stop): nothing more comes from this copy, and its
    // error is not the app's server's to emit.
    if (status === UV_EINVAL) {
      this.#closeCopy();
      return;
    }
    const onconnection = this.handle.onconnection;
    if (!onconnection) {
      connection?.close();
      return;
    }
    onconnection.call(this.handle, status, connection);
    if (status !== 0) return;
    this.#accepted++;
    this.#checkLimit();
  }

  /** At the limit: stop polling, and tell the master once. */
  #checkLimit(): void {
    const connections = this.#server._connections;
    if (connections > this.#peak) this.#peak = connections;
    const { epoch, overflow } = this.#terms;
    if (!this.#copy) return;
    const ceiling = this.#ceilingBelowLimit(overflow ? null : ceilingOf(this.#server));
    const at = ceiling ?? this.#terms.limit;
    if (at === null || connections < at) return;
    this.#closeCopy();
    this.#full = true;
    this.#asked = false;
    this.#ceiling = ceiling;
    channel.send({ cmd: 'NODE_clusterd:full', key: this.#key, epoch, connections, ceiling });
  }

  /**
   * The server's own maxConnections `max` when it stops this worker before the limit does; null when
   * the limit comes first. With no limit (the one worker the master prefers) it stops there all the
   * same: past it Node refuses, while a worker the master ranks below (its loop stalled) has room.
   */
  #ceilingBelowLimit(max: number | null): number | null {
    const { limit } = this.#terms;
    return max !== null && (limit === null || max < limit) ? max : null;
  }

  /** The master's level to come down to (a non-negative integer), or null to stop ending connections. */
  endConnections(keep: number | null): void {
    this.#keep = Number.isSafeInteger(keep) && keep! >= 0 ? keep : null;
  }

  /** Whether this response should end its connection: the server holds more than the master's level, not counting those already told. */
  #endsConnection(socket: net.Socket): boolean {
    if (this.#keep === null || !this.#open || this.#server._connections - this.#ending <= this.#keep) return false;
    this.#ending++;
    socket.once('close', () => this.#ending--);
    return true;
  }

  #connectionClosed(): void {
    this.#closed++;
    if (this.#server._connections < this.#low) this.#low = this.#server._connections;
    this.#askAgainIfUnder();
    this.#sayRoom();
  }

  /**
   * Accepting past its maxConnections because every worker was at its own (`overflow`), and below it
   * again: said at once, so that the master ends the overflow and the others, still at theirs, stop
   * taking connections their servers refuse.
   */
  #sayRoom(): void {
    if (!this.#terms.overflow || this.#roomSaid || !this.#copy) return;
    const max = ceilingOf(this.#server);
    if (max === null || this.#server._connections >= max) return;
    this.#roomSaid = true;
    this.#sendUnder();
  }

  /** `under`, with the load since the last report so far. */
  #sendUnder(): void {
    const connections = this.#server._connections;
    channel.send({ cmd: 'NODE_clusterd:under', key: this.#key, epoch: this.#terms.epoch, connections, peak: this.#peak, low: Math.min(this.#low, connections), accepted: this.#accepted, closed: this.#closed });
  }

  /** Full, and back down to the resume point: say `under`, once, with the load since the last report so far. */
  #askAgainIfUnder(): void {
    const below = this.#ceiling === null ? null : resumeBelowCeiling(this.#ceiling);
    // With no limit its resume point is the ceiling's alone.
    const at = below === null ? this.#terms.resumeAt : this.#terms.limit === null ? below : Math.min(this.#terms.resumeAt, below);
    if (!this.#full || this.#asked || this.#server._connections > at) return;
    this.#asked = true;
    this.#sendUnder();
  }

  #closeCopy(): void {
    const copy = this.#copy;
    this.#copy = null;
    if (copy) {
      copy.onconnection = null;
      copy.close();
    }
  }
}
