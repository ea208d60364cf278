// Who may keep a connection to the TCP control listener (`--control HOST:PORT`).
//
// A connection proves itself only with its first call: the token travels in the call's HTTP/2
// headers, which grpc-js parses. Until then it is *pending*, and pending connections are what a
// stranger can open without limit, so they are the ones bounded:
// - a pending connection has AUTH_DEADLINE_MS to complete the token check (requireToken in auth.ts
//   reports it here), or it is closed;
// - at most MAX_PENDING_PER_SOURCE per source (an IPv4 address, an IPv6 /64, which one host
//   usually holds whole) and MAX_PENDING in all: past either, the *oldest* pending connection of
//   that source (for the total: of the source holding the most) is closed to make room. The
//   per-source limit counts a connection only once it has been pending SETTLE_MS: a client with
//   the token that opens 40 channels at once sends 40 calls within milliseconds, and closing the
//   oldest of them as the 17th connected dropped calls already on the wire. What a stranger holds
//   open past that is trimmed then; until then MAX_PENDING (busiest source first) bounds it.
// The new connection is always let in while a pending one can be evicted, never refused: a client
// with the token connects and sends its call at once, so it gets through however many idle
// connections are open, where a cap that refuses newcomers (net.Server#maxConnections) is filled
// by a flood and locks everyone out. Authenticated connections are trusted (their owner has the
// token) and bounded only by MAX_CONNECTIONS in all.
//
// Why here and not in front of grpc-js (a proxy reading the bytes): deciding needs the HTTP/2
// HEADERS frame, HPACK-decoded; grpc-js already does that, and the server interceptor that checks
// the token names the connection by its remote address and port.
import type { Socket } from 'node:net';

export const AUTH_DEADLINE_MS = 3_000;
/** How long a new connection has to send its first call before the per-source limit may close it. */
export const SETTLE_MS = 1_000;
export const MAX_PENDING_PER_SOURCE = 16;
export const MAX_PENDING = 256;
/** Pending and authenticated together; past it, a newcomer is closed only if nothing is pending. */
export const MAX_CONNECTIONS = 1024;

export interface GuardLimits {
  authDeadlineMs: number;
  settleMs: number;
  pendingPerSource: number;
  pending: number;
  connections: number;
}

const DEFAULT_LIMITS: GuardLimits = {
  authDeadlineMs: AUTH_DEADLINE_MS,
  settleMs: SETTLE_MS,
  pendingPerSource: MAX_PENDING_PER_SOURCE,
  pending: MAX_PENDING,
  connections: MAX_CONNECTIONS,
};

/** The part of a socket the guard uses (a net.Socket; tests pass stand-ins). */
export type GuardedSocket = Pick<Socket, 'remoteAddress' | 'remotePort' | 'destroy' | 'once'>;

interface Pending {
  socket: GuardedSocket;
  source: string;
  peer: string;
  timer: NodeJS.Timeout;
  /** Pending for SETTLE_MS at least: the per-source limit may close it. */
  settled: boolean;
  /** Out of the maps already (authenticated, evicted or closed). */
  forgotten?: boolean;
}

export class ConnectionGuard {
  readonly #limits: GuardLimits;
  /** Pending connections by source, oldest first. */
  readonly #bySource = new Map<string, Pending[]>();
  /** Pending connections by `address|port`, for authenticated(). */
  readonly #byPeer = new Map<string, Pending>();
  #connections = 0;

  constructor(limits: Partial<GuardLimits> = {}) {
    this.#limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Unauthenticated connections open now. */
  get pending(): number {
    return this.#byPeer.size;
  }

  /** Every connection open now, authenticated or not. */
  get connections(): number {
    return this.#connections;
  }

  /** Takes a new connection in as pending, closing older pending ones past the limits. Returns false if it was closed itself. */
  admit(socket: GuardedSocket): boolean {
    // Reset before it was accepted: no peer to know it by (two such once shared one key, and the
    // first then stayed in the queues for good, which stopped every limit from evicting anything).
    if (socket.remoteAddress === undefined || socket.remotePort === undefined) {
      socket.destroy();
      return false;
    }
    if (this.#connections >= this.#limits.connections && !this.#evictFrom(this.#busiestSource())) {
      socket.destroy();
      return false;
    }
    this.#connections++;
    const source = sourceOf(socket.remoteAddress ?? '');
    const { settleMs, authDeadlineMs } = this.#limits;
    const settleNow = settleMs <= 0 || settleMs >= authDeadlineMs;
    const entry: Pending = {
      socket,
      source,
      peer: peerKey(socket.remoteAddress, socket.remotePort),
      settled: settleNow,
      timer: settleNow ? setTimeout(() => this.#evict(entry), authDeadlineMs).unref() : setTimeout(() => this.#settle(entry), settleMs).unref(),
    };
    socket.once('close', () => {
      this.#connections--;
      this.#forget(entry);
    });
    const queue = this.#bySource.get(source) ?? [];
    queue.push(entry);
    this.#bySource.set(source, queue);
    this.#byPeer.set(entry.peer, entry);
    this.#trim(source);
    if (this.#byPeer.size > this.#limits.pending) this.#evictFrom(this.#busiestSource());
    return true;
  }

  /** A call on the connection from this remote address and port carried the right token: it stays. */
  authenticated({ remoteAddress, remotePort }: { remoteAddress?: string | undefined; remotePort?: number | undefined }): void {
    const entry = this.#byPeer.get(peerKey(remoteAddress, remotePort));
    if (entry) this.#forget(entry);
  }

  /** `entry` has had SETTLE_MS to send its call: from now on it counts against its source's limit, until its deadline. */
  #settle(entry: Pending): void {
    entry.settled = true;
    entry.timer = setTimeout(() => this.#evict(entry), this.#limits.authDeadlineMs - this.#limits.settleMs).unref();
    this.#trim(entry.source);
  }

  /** Closes the oldest settled pending connections of `source` while it holds more than its limit. */
  #trim(source: string): void {
    const queue = this.#bySource.get(source);
    // Oldest first, and all settle alike: a settled one, if any, is first.
    while (queue && queue.length > this.#limits.pendingPerSource && queue[0]!.settled) this.#evict(queue[0]!);
  }

  /** Closes the oldest pending connection of `source`; false when it has none. */
  #evictFrom(source: string | null): boolean {
    const oldest = source === null ? undefined : this.#bySource.get(source)?.[0];
    if (!oldest) return false;
    this.#evict(oldest);
    return true;
  }

  #evict(entry: Pending): void {
    // Forgotten first: the counts must drop now, not when 'close' comes on a later tick.
    this.#forget(entry);
    entry.socket.destroy();
  }

  #forget(entry: Pending): void {
    if (entry.forgotten) return;
    entry.forgotten = true;
    clearTimeout(entry.timer);
    if (this.#byPeer.get(entry.peer) === entry) this.#byPeer.delete(entry.peer);
    const queue = this.#bySource.get(entry.source);
    const at = queue?.indexOf(entry) ?? -1;
    if (queue && at !== -1) queue.splice(at, 1);
    if (queue?.length === 0) this.#bySource.delete(entry.source);
  }

  #busiestSource(): string | null {
    let busiest: string | null = null;
    let most = 0;
    for (const [source, queue] of this.#bySource) {
      if (queue.length > most) [busiest, most] = [source, queue.length];
    }
    return busiest;
  }
}

function peerKey(address: string | undefined, port: number | undefined): string {
  return `${address}|${port}`;
}

/** What counts as one source: an IPv4 address (also IPv4-mapped), or an IPv6 /64. */
export function sourceOf(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const bare = address.split('%')[0]!;
  const [head = '', tail] = bare.split('::');
  const groups = (text: string | undefined): string[] =>
    // An embedded IPv4 address (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) stands for two groups.
    (text ? text.split(':') : []).flatMap((group) => (group.includes('.') ? ['0', '0'] : [group]));
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  const all = [...front, ...Array<string>(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back];
  return `${all
    .slice(0, 4)
    .map((group) => (Number.parseInt(group, 16) || 0).toString(16))
    .join(':')}::/64`;
}
