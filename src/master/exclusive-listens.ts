// The sockets the app binds in a worker itself, with `exclusive: true` on a fixed port or a unix
// socket path (src/worker/exclusive.ts reports them). They are not shared: each worker binds its own,
// so a second worker, or a reload's or restart's new worker while the old one still holds it, fails
// with EADDRINUSE. The master says so once per address, lists them with the addresses it binds, and
// names the holder when a worker's bind fails.
import { isIP } from 'node:net';
import type { BalancedWorker } from './balancers/index.js';
import type { ListenFailure } from './listeners.js';
import { formatAddress, hostsShareAddress, isWildcardHost } from '../address.js';
import type { OwnClose, OwnListen, SockName } from '../protocol.js';

/** An address a worker listens on by itself (`exclusive: true`). */
export interface ExclusiveAddress extends SockName {
  /** The id of the worker that holds it. */
  worker: number;
}

interface Held {
  /** What the app asked for (a host or none, and a port; or a path and -1). */
  asked: Pick<OwnListen, 'address' | 'port'>;
  sockname: SockName;
}

/**
 * The addresses one worker process may list: an app binds a few, and one listening in a loop (or lying)
 * must not fill the cluster's `max` and leave another worker's real ones unlisted and unnamed.
 */
export const MAX_EXCLUSIVE_PER_WORKER = 64;

export class ExclusiveListens {
  readonly #held = new Map<BalancedWorker, Map<number, Held>>();
  /** The addresses said once (at most `max`: an app listening in a loop would fill it). */
  readonly #said = new Set<string>();
  readonly #warn: (event: string, message: string, data: Record<string, unknown>) => void;
  readonly #max: number;
  #count = 0;
  /** Whether the line that says some addresses go unlisted was said. */
  #saidFull = false;

  constructor({ warn, max }: { warn: (event: string, message: string, data: Record<string, unknown>) => void; max: number }) {
    this.#warn = warn;
    this.#max = max;
  }

  /** A worker's report of an exclusive listen: its failure (to name when its boot fails), or null. */
  listened(worker: BalancedWorker, message: OwnListen): ListenFailure | null {
    const { address, port } = message;
    if (message.sockname === null) {
      const code = message.error?.code ?? 'UNKNOWN';
      const holder = code === 'EADDRINUSE' ? this.#holder(worker, message) : null;
      const query = { key: '', address, port, addressType: port === -1 ? -1 : 4, flags: 0 };
      return { query, code, errno: message.error?.errno ?? -1, exclusive: { holder } };
    }
    if (worker.exited) return null;
    let held = this.#held.get(worker);
    if (!held?.has(message.id) && (this.#count >= this.#max || (held?.size ?? 0) >= MAX_EXCLUSIVE_PER_WORKER)) {
      this.#full(worker);
      return null;
    }
    if (!held) this.#held.set(worker, (held = new Map()));
    if (!held.has(message.id)) this.#count++;
    held.set(message.id, { asked: { address, port }, sockname: message.sockname });
    this.#sayOnce(worker, message.sockname);
    return null;
  }

  closed(worker: BalancedWorker, { id }: Pick<OwnClose, 'id'>): void {
    const held = this.#held.get(worker);
    if (!held?.delete(id)) return;
    this.#count--;
    if (held.size === 0) this.#held.delete(worker);
  }

  /** The worker is gone: its sockets closed with it. */
  remove(worker: BalancedWorker): void {
    this.#count -= this.#held.get(worker)?.size ?? 0;
    this.#held.delete(worker);
  }

  /** Every address a worker listens on by itself, once each (the first worker's that holds it). */
  addresses(): ExclusiveAddress[] {
    const seen = new Map<string, ExclusiveAddress>();
    for (const [worker, held] of this.#held) {
      for (const { sockname } of held.values()) {
        const where = formatAddress(sockname);
        if (!seen.has(where)) seen.set(where, { ...sockname, worker: worker.id });
      }
    }
    return [...seen.values()];
  }

  /** Past a cap, said once: an address a worker binds by itself goes unlisted, and unnamed when a bind fails on it. */
  #full(worker: BalancedWorker): void {
    if (this.#saidFull) return;
    this.#saidFull = true;
    this.#warn(
      'listen-exclusive-unlisted',
      `worker ${worker.id} listens with exclusive: true on more addresses than clusterd lists (${MAX_EXCLUSIVE_PER_WORKER} per worker, ${this.#max} in all): the others are not listed, nor named when a bind fails on them (said once)`,
      { worker: worker.id, perWorker: MAX_EXCLUSIVE_PER_WORKER, max: this.#max },
    );
  }

  #sayOnce(worker: BalancedWorker, sockname: SockName): void {
    const where = formatAddress(sockname);
    if (this.#said.has(where) || this.#said.size >= this.#max) return;
    this.#said.add(where);
    const what = sockname.port === -1 ? 'unix socket' : 'port';
    this.#warn(
      'listen-exclusive',
      `worker ${worker.id} listens on ${where} with exclusive: true, which the worker binds alone: the ${what} is not shared with the other workers, ` +
        `so more than one worker cannot bind it, nor can a reload or restart, whose new worker starts while the old one holds it (EADDRINUSE). ` +
        `Leave exclusive out to share it (said once)`,
      { worker: worker.id, address: where },
    );
  }

  /** Another live worker that listens by itself on what `message` asked for: same path, or same port on an address that overlaps. */
  #holder(asking: BalancedWorker, message: Pick<OwnListen, 'address' | 'port'>): number | null {
    for (const [worker, held] of this.#held) {
      // An exited worker is no longer here: remove() took its sockets when it exited.
      if (worker === asking) continue;
      for (const { asked } of held.values()) if (overlaps(asked, message)) return worker.id;
    }
    return null;
  }
}

/** An address the master holds itself, and what it is (`the master's own --metrics address`). */
export interface MasterAddress {
  what: string;
  /** A host, or with port -1 a unix socket's path. */
  address: string;
  port: number;
  /** Bound with ipv6Only (the app's listen asked for it): a `::` that takes no IPv4. */
  ipv6Only?: boolean;
}

/**
 * What the master holds of the address a worker says it bound by itself, or undefined. A worker cannot
 * bind what the master holds (Linux refuses the bind: EADDRINUSE), so the claim is a lie: the same
 * path; or the same port on the same address, on an address the master's wildcard covers (its `::`
 * takes IPv4 too, as Node binds it unless the app's listen asked for ipv6Only: then IPv6 alone, and a
 * v4-mapped `::ffff:` address is IPv4), or on a wildcard of the same family over the master's address. A claimed `::` over an IPv4 address of the master's may be a v6-only socket:
 * not refused. (hostsShareAddress, near enough to name who holds a port, ignores the family: a
 * refusal cannot.)
 */
export function heldByMaster(claim: SockName, held: readonly MasterAddress[]): MasterAddress | undefined {
  return held.find(({ address, port, ipv6Only = false }) => {
    if (port !== claim.port) return false;
    if (port === -1) return address === claim.address;
    if (address === claim.address) return true;
    // The master's wildcard: `::` (or none) takes IPv4 too unless v6-only, 0.0.0.0 only IPv4. Linux
    // lets a worker bind 0.0.0.0 on the port of a v6-only `::`.
    if (address === '0.0.0.0') return isIPv4(claim.address);
    if (isWildcardHost(address)) return !ipv6Only || !isIPv4(claim.address);
    if (address === 'localhost') return claim.address === '127.0.0.1' || claim.address === '::1';
    return claim.address === (isIP(address) === 4 ? '0.0.0.0' : '::');
  });
}

/** An IPv4 address, or one mapped into IPv6 (`::ffff:127.0.0.1`), which binds in IPv4's space. */
function isIPv4(host: string): boolean {
  return isIP(host) === 4 || /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(host);
}

function overlaps(a: Pick<OwnListen, 'address' | 'port'>, b: Pick<OwnListen, 'address' | 'port'>): boolean {
  if (a.port !== b.port) return false;
  if (a.port === -1) return a.address === b.address;
  return hostsShareAddress(a.address, b.address);
}
