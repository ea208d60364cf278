// The master's table of listening addresses, keyed like Node's cluster (address:port:type:fd:index).
// The first worker to listen on a key binds it; later workers (and replacements) join it. Unix
// socket paths too: a stale socket file is replaced, and a path a worker removed is put back.
// An address stays bound while no worker listens on it, so that clients queue while a replacement
// starts; one that the replacements do not listen on again is released (see #sweep).
import { performance } from 'node:perf_hooks';
import { existsSync } from 'node:fs';
import { setTimeout as pause } from 'node:timers/promises';
import { constants as osConstants } from 'node:os';
import { openBalancer, type BalanceMode, type Balancer, type BalancedWorker, type BalancerContext } from './balancers/index.js';
import { BindError, UV_TCP_IPV6ONLY } from './balancers/bind.js';
import { removeStaleSocket } from '../control/socket-file.js';
import { SparePath } from './socket-path.js';
import { formatAddress } from '../address.js';
import { ExclusiveListens, heldByMaster, type ExclusiveAddress, type MasterAddress } from './exclusive-listens.js';
import type { OwnListener } from './listen-failure.js';
import { isSocketPath, type AcceptorLoad, type AcceptorReport, type ListenQuery, type OwnClose, type OwnListen, type SockName } from '../protocol.js';

export interface ListenFailure {
  query: ListenQuery;
  code: string;
  errno: number;
  /** The worker bound it itself (`exclusive: true`), not the master; `holder`: the id of another worker that holds it. */
  exclusive?: { holder: number | null };
}

/** At most this many listening addresses in one cluster: a worker that asks for more is refused (EMFILE). */
export const MAX_ADDRESSES = 1024;

export class Listeners {
  readonly #mode: BalanceMode;
  readonly #balancers = new Map<string, Promise<Balancer>>();
  // The same balancers once bound, for the per-connection path (no promise hop per ack).
  readonly #open = new Map<string, Balancer>();
  readonly #onFailure: (failure: ListenFailure, worker: BalancedWorker) => void;
  readonly #warn: (event: string, message: string, data: Record<string, unknown>) => void;
  // Spare links of the unix socket paths the master bound, by key, to put a removed path back.
  readonly #spares = new Map<string, SparePath>();
  // The keys of unix socket paths already reported removed: once each while bound (at most MAX_ADDRESSES).
  readonly #goneReported = new Set<string>();
  readonly #maxAddresses: number;
  readonly #ids: () => readonly number[];
  readonly #ownListeners: () => readonly OwnListener[];
  /** The cap was said (once: an app listening in a loop would say it on every turn). */
  #capSaid = false;
  #closed = false;
  /** By key, the last worker of each id that listened on it. */
  readonly #holders = new Map<string, Map<number, BalancedWorker>>();
  /** By id, the last worker that became ready, and when. */
  readonly #ready = new Map<number, { worker: BalancedWorker; at: number }>();
  readonly #releaseAfterMs: number;
  #sweepTimer: NodeJS.Timeout | undefined;
  /** The addresses workers bind by themselves (`exclusive: true`), which the master only lists. */
  readonly #exclusive: ExclusiveListens;
  /** The keys bound with ipv6Only: their `::` takes no IPv4, which a worker may then bind by itself. */
  readonly #ipv6Only = new Set<string>();

  constructor({
    mode,
    onFailure,
    warn = () => {},
    maxAddresses = MAX_ADDRESSES,
    releaseAfterMs = 10_000,
    ids = () => [],
    ownListeners = () => [],
  }: {
    mode: BalanceMode;
    /** The worker ids the cluster is configured for (sticky hashes over them); none: the workers accepting. */
    ids?: () => readonly number[];
    /** The master's own listeners (--metrics, --health, --dashboard, --control): no worker can bind their addresses. */
    ownListeners?: () => readonly OwnListener[];
    /** At most this many addresses (MAX_ADDRESSES; fewer in tests). */
    maxAddresses?: number;
    /** How long the replacements are ready without listening on an address before it is released (--listen-timeout). */
    releaseAfterMs?: number;
    onFailure: (failure: ListenFailure, worker: BalancedWorker) => void;
    /** A line for the master's log: a stale unix socket removed, a removed socket path put back (or not). */
    warn?: (event: string, message: string, data: Record<string, unknown>) => void;
  }) {
    this.#mode = mode;
    this.#onFailure = onFailure;
    this.#warn = warn;
    this.#maxAddresses = maxAddresses;
    this.#releaseAfterMs = releaseAfterMs;
    this.#ids = ids;
    this.#ownListeners = ownListeners;
    this.#exclusive = new ExclusiveListens({ warn, max: maxAddresses });
  }

  #context(): BalancerContext {
    return { ids: this.#ids, warn: this.#warn };
  }

  /** Answers a worker's listen request: binds the address on first use, then adds the worker. */
  listen(worker: BalancedWorker, seq: number, query: ListenQuery): void {
    let opening = this.#balancers.get(query.key);
    if (!opening && this.#balancers.size >= this.#maxAddresses) {
      // An app listening in a loop must not run the master out of descriptors; the app's listen fails
      // with EMFILE, and the master's log says why, once.
      worker.send({ cmd: 'NODE_clusterd:listen-reply', seq, errno: -osConstants.errno.EMFILE, mode: 'rr', sockname: null });
      if (!this.#capSaid) {
        this.#capSaid = true;
        this.#warn(
          'listen-cap',
          `worker ${worker.id} asked to listen on more than ${this.#maxAddresses} addresses at once: refused with EMFILE (a cluster holds at most ${this.#maxAddresses}; said once)`,
          { worker: worker.id, max: this.#maxAddresses },
        );
      }
      return;
    }
    if (!opening) {
      opening = openBalancer(this.#mode, query, this.#context()).catch((error: unknown) => this.#reopenIfStale(error, query));
      this.#balancers.set(query.key, opening);
      // A failed bind is forgotten so that a later attempt (say, once the port is free) retries.
      opening.then(
        (balancer) => {
          this.#open.set(query.key, balancer);
          if ((query.flags & UV_TCP_IPV6ONLY) !== 0) this.#ipv6Only.add(query.key);
          const path = socketFile(query);
          const spare = path === null ? null : SparePath.keep(path);
          if (spare) this.#spares.set(query.key, spare);
        },
        () => this.#balancers.delete(query.key),
      );
    }
    opening.then(
      (balancer) => {
        if (this.#closed || worker.exited) return;
        // Its last worker left (and closed it) while this request waited: bind the address anew.
        if (this.#open.get(query.key) !== balancer) this.listen(worker, seq, query);
        else {
          balancer.add(worker, seq);
          this.#holdersOf(query.key).set(worker.id, worker);
          this.#checkPath(query, worker);
        }
      },
      (error: unknown) => {
        const errno = error instanceof BindError ? error.errno : -1;
        const code = error instanceof BindError ? error.code : 'UNKNOWN';
        worker.send({ cmd: 'NODE_clusterd:listen-reply', seq, errno, mode: 'rr', sockname: null });
        this.#onFailure({ query, code, errno }, worker);
      },
    );
  }

  /**
   * The worker listened by itself (`exclusive: true`), or failed to: a failure is named if its boot fails.
   * Returns why the report is refused (a claim of an address the master holds), or null.
   */
  ownListen(worker: BalancedWorker, message: OwnListen): string | null {
    const taken = message.sockname && heldByMaster(message.sockname, this.#masterAddresses());
    if (taken) return `sockname: ${formatAddress(message.sockname!)} is ${taken.what}, which the master holds`;
    const failure = this.#exclusive.listened(worker, message);
    if (failure) this.#onFailure(failure, worker);
    return null;
  }

  /** The addresses the master holds: those it shares among the workers (not UDP: another port space), and its own listeners'. */
  #masterAddresses(): MasterAddress[] {
    const shared = [...this.#open].flatMap(([key, { sockname, datagram }]) =>
      sockname && !datagram ? [{ what: "the cluster's shared address", ...sockname, ipv6Only: this.#ipv6Only.has(key) }] : [],
    );
    const own = this.#ownListeners().map((listener) =>
      'path' in listener ? { what: `the master's own ${listener.flag} socket`, address: listener.path, port: -1 } : { what: `the master's own ${listener.flag} address`, address: listener.host, port: listener.port },
    );
    return [...shared, ...own];
  }

  /** A server the worker listened on by itself closed. */
  ownClose(worker: BalancedWorker, message: OwnClose): void {
    this.#exclusive.closed(worker, message);
  }

  /** The worker closed its server on this key. The last one out closes the socket. */
  close(worker: BalancedWorker, key: string): void {
    const balancer = this.#open.get(key);
    if (!balancer) return;
    balancer.remove(worker);
    if (balancer.size === 0) this.#release(key, balancer);
  }

  #release(key: string, balancer: Balancer): void {
    balancer.close();
    this.#open.delete(key);
    this.#ipv6Only.delete(key);
    this.#balancers.delete(key);
    this.#spares.get(key)?.remove();
    this.#spares.delete(key);
    this.#goneReported.delete(key);
    this.#holders.delete(key);
  }

  #holdersOf(key: string): Map<number, BalancedWorker> {
    let holders = this.#holders.get(key);
    if (!holders) this.#holders.set(key, (holders = new Map()));
    return holders;
  }

  /** The worker is ready (it listened on all it listens on at start-up): addresses its id held before may be released. */
  ready(worker: BalancedWorker): void {
    this.#ready.set(worker.id, { worker, at: performance.now() });
    this.#sweep();
  }

  /**
   * Releases the addresses that no worker listens on and that the replacements of every worker that
   * did have been ready for releaseAfterMs without listening on (a server of the old code, or a
   * listen forged by the app: 1,023 ports held for good, each listed in `status`, the cap full).
   * Until then the address stays bound, so that clients queue while a replacement starts (a server
   * the app starts after its start-up has that long). An id with no replacement (scaled down)
   * keeps it, as before. Said in one line per sweep.
   */
  #sweep(): void {
    if (this.#closed) return;
    // The monotonic clock: a wall-clock step must not release an address early, or hold it for good.
    const now = performance.now();
    let nextAt = Infinity;
    const released: string[] = [];
    for (const [key, balancer] of this.#open) {
      if (balancer.size > 0) continue;
      const readyAt = this.#replacedAt(key);
      if (readyAt === null) continue;
      if (now - readyAt >= this.#releaseAfterMs) {
        this.#release(key, balancer);
        released.push(balancer.sockname ? formatAddress(balancer.sockname) : key);
      } else nextAt = Math.min(nextAt, readyAt + this.#releaseAfterMs);
    }
    if (released.length > 0) {
      const named = released.slice(0, 5).join(', ') + (released.length > 5 ? ` and ${released.length - 5} more` : '');
      this.#warn(
        'listen-released',
        `released ${released.length === 1 ? 'an address' : `${released.length} addresses`} no worker listens on any more (their replacements are ready without it): ${named}`,
        { count: released.length, addresses: released.slice(0, 100) },
      );
    }
    clearTimeout(this.#sweepTimer);
    this.#sweepTimer = nextAt === Infinity ? undefined : setTimeout(() => this.#sweep(), nextAt - now).unref();
  }

  /** When the last of the replacements of the workers that listened on `key` became ready; null while one is missing. */
  #replacedAt(key: string): number | null {
    const holders = this.#holders.get(key);
    if (!holders || holders.size === 0) return null;
    let latest = 0;
    for (const [id, holder] of holders) {
      const ready = this.#ready.get(id);
      if (!ready || ready.worker === holder || ready.worker.exited) return null;
      latest = Math.max(latest, ready.at);
    }
    return latest;
  }

  /** The worker may now be given connections (under --wait-ready: it said it is ready). */
  activate(worker: BalancedWorker): void {
    for (const balancer of this.#open.values()) balancer.activate(worker);
  }

  ack(worker: BalancedWorker, key: string, id: number, accepted: boolean): void {
    this.#open.get(key)?.ack(worker, id, accepted);
  }

  /** `fair`: the worker stopped accepting at its limit, asks to accept again, or reports its counts. */
  report(worker: BalancedWorker, message: AcceptorReport | AcceptorLoad): void {
    this.#open.get(message.key)?.report?.(worker, message);
  }

  /** The worker's loop health changed: balancers that route by it look again. */
  health(worker: BalancedWorker): void {
    for (const balancer of this.#open.values()) balancer.health?.(worker);
  }

  /**
   * A unix socket path in use by a socket nobody listens on (left by a process that was killed, a
   * master's included) is removed and bound again, once; anything else stays EADDRINUSE.
   */
  async #reopenIfStale(error: unknown, query: ListenQuery): Promise<Balancer> {
    const path = socketFile(query);
    if (!(error instanceof BindError) || error.code !== 'EADDRINUSE' || path === null) throw error;
    if ((await removeStaleSocket(path).catch(() => 'unremovable')) !== null) throw error;
    this.#warn('socket-stale-removed', `removed the stale unix socket ${path} (nothing listened on it) and bound it again`, { path });
    return openBalancer(this.#mode, query, this.#context());
  }

  /**
   * A worker listens on a unix socket path whose file is gone: the app removed it before listen()
   * (a stale-socket cleanup meant for one process), after the master had bound it for another
   * worker. The spare link puts it back; said once per path.
   */
  #checkPath(query: ListenQuery, worker: BalancedWorker): void {
    const path = socketFile(query);
    if (path === null || existsSync(path)) return;
    const restored = this.#spares.get(query.key)?.restore() ?? false;
    if (this.#goneReported.has(query.key)) return;
    this.#goneReported.add(query.key);
    const removed = `worker ${worker.id} removed the unix socket ${path} before listening on it (a cleanup of a stale socket meant for one process, run in every worker)`;
    if (restored) {
      this.#warn('socket-path-restored', `${removed}: the master linked the path back to its socket; connections tried in between were refused. Remove a stale socket once, before starting clusterd`, { worker: worker.id, path });
    } else {
      this.#warn('socket-path-gone', `${removed}: clients cannot reach it by that path. Remove a stale socket once, before starting clusterd, not in every worker`, { worker: worker.id, path });
    }
  }

  /**
   * Takes a worker out of balancing everywhere (it is draining or gone). Its addresses stay
   * bound even when it was the last worker, so a replacement finds the same socket and
   * clients queue instead of being refused. The sockets it bound itself (`exclusive: true`) are
   * its own until it exits: a draining worker still holds them, and is listed and named as holding them.
   */
  remove(worker: BalancedWorker): void {
    for (const balancer of this.#open.values()) balancer.remove(worker);
    if (worker.exited) this.#exclusive.remove(worker);
    this.#sweep();
  }

  /**
   * Every address clients connect to, for the ready line and `status` (not UDP sockets): those the
   * master binds, then those a worker binds by itself (`exclusive: true`), which name that worker.
   */
  addresses(): Array<SockName | ExclusiveAddress> {
    const bound = [...this.#open.values()].flatMap((balancer) => (balancer.sockname && !balancer.datagram ? [balancer.sockname] : []));
    return [...bound, ...this.#exclusive.addresses()];
  }

  /**
   * A stop's first step: every listening socket stops accepting, and what the master had accepted
   * and queued goes to the workers; resolves once it has, or after `limitMs` (a worker that never
   * takes its share). closeAll() follows.
   */
  async stopAccepting(limitMs: number): Promise<void> {
    const settled = await Promise.allSettled(this.#balancers.values());
    const flushing = settled.flatMap((result) => (result.status === 'fulfilled' && result.value.stopAccepting ? [result.value.stopAccepting()] : []));
    if (flushing.length === 0) return;
    await Promise.race([Promise.all(flushing), pause(limitMs, undefined, { ref: false })]);
  }

  /** Stops accepting everywhere: closes every listening socket and queued connection. */
  async closeAll(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#sweepTimer);
    const settled = await Promise.allSettled(this.#balancers.values());
    for (const result of settled) if (result.status === 'fulfilled') result.value.close();
    for (const spare of this.#spares.values()) spare.remove();
    this.#spares.clear();
    this.#balancers.clear();
    this.#open.clear();
    this.#ipv6Only.clear();
  }
}

/** The file of a unix socket listen (none for TCP, nor for an abstract socket, which has no file). */
function socketFile(query: ListenQuery): string | null {
  return isSocketPath(query) && query.address?.startsWith('/') ? query.address : null;
}
