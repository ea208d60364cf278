// Balancers where workers accept for themselves; the master only holds the listening address.
//
// shared: the master binds once and gives every worker a copy of the socket; the kernel decides
// who gets each connection (unevenly: Node's docs report over 70% of connections going to two of
// eight processes).
//
// UDP on a fixed port, whatever the mode: the master binds it, and every worker receives on a copy.
//
// reuseport: each worker binds a socket of its own to the address with SO_REUSEPORT and the
// kernel spreads connections over them by a hash of the client's address and port (not by
// load). The master's socket, bound with the same flag but never listening, holds the port (and
// picks it for `listen(0)`) while workers come and go. Needs Node >= 22.12 (23.1 on the 23 line)
// on Linux: checked at start (reusePortSupport). Connections still in a closing worker's accept
// queue are reset with it, unless the kernel moves them to another socket of the group:
// net.ipv4.tcp_migrate_req=1 (Linux >= 5.14; off by default), checked at start (reusePortMigration).
import { readFileSync } from 'node:fs';
import { bindShared, bindUdp, heldSocketReply } from './bind.js';
import { takeInherited } from '../activation.js';
import type { BalancedWorker, Balancer, RawHandle } from './types.js';
import { isUdp, type ListenQuery, type SockName } from '../../protocol.js';

/** libuv's UV_TCP_REUSEPORT (1.49+). */
export const UV_TCP_REUSEPORT = 2;

export class HeldSocketBalancer implements Balancer {
  readonly key: string;
  readonly sockname: SockName;
  readonly datagram: boolean;
  readonly #mode: 'shared' | 'reuseport';
  #handle: RawHandle | null;
  /** A socket systemd passed: the backlog every worker listens on it with (null: the app's). */
  readonly #inheritedBacklog: number | null;
  readonly #workers = new Set<BalancedWorker>();

  private constructor(key: string, mode: 'shared' | 'reuseport', handle: RawHandle, sockname: SockName, { datagram = false, inheritedBacklog = null }: { datagram?: boolean; inheritedBacklog?: number | null } = {}) {
    this.key = key;
    this.#inheritedBacklog = inheritedBacklog;
    this.datagram = datagram;
    this.#mode = mode;
    this.#handle = handle;
    this.sockname = sockname;
  }

  /** Binds the address in the master without listening; throws a BindError. */
  static async open(query: ListenQuery, mode: 'shared' | 'reuseport'): Promise<HeldSocketBalancer> {
    if (isUdp(query)) {
      const { handle, sockname } = bindUdp(query);
      return new HeldSocketBalancer(query.key, 'shared', handle, sockname, { datagram: true });
    }
    // An inherited socket (socket activation) is one socket whatever the mode: reuseport shares it too.
    const inherited = takeInherited(query);
    if (inherited) return new HeldSocketBalancer(query.key, 'shared', inherited.handle, inherited.sockname, { inheritedBacklog: inherited.backlog });
    const flags = mode === 'reuseport' ? query.flags | UV_TCP_REUSEPORT : query.flags;
    const { handle, sockname } = bindShared({ ...query, flags });
    return new HeldSocketBalancer(query.key, mode, handle, sockname);
  }

  get size(): number {
    return this.#workers.size;
  }

  add(worker: BalancedWorker, seq: number): void {
    this.#workers.add(worker);
    // shared: the socket travels with the reply; reuseport: the worker binds its own.
    worker.send(heldSocketReply(seq, this.#mode, this.sockname, this.#inheritedBacklog), this.#mode === 'shared' ? this.#handle! : undefined);
  }

  remove(worker: BalancedWorker): void {
    this.#workers.delete(worker);
  }

  activate(): void {
    // The worker accepts as soon as it listens: nothing to start.
  }

  ack(): void {
    // Workers accept for themselves: there are no handoffs to acknowledge.
  }

  close(): void {
    this.#handle?.close();
    this.#handle = null;
    this.#workers.clear();
  }
}

/**
 * Whether the kernel moves the connections waiting in a closing SO_REUSEPORT socket's queue to
 * another of its group (net.ipv4.tcp_migrate_req, Linux >= 5.14): 'off' (0, the default, or a
 * kernel without it) means a worker that drains (reload, restart, scale down) resets them.
 */
export function reusePortMigration(path = '/proc/sys/net/ipv4/tcp_migrate_req'): 'on' | 'off' {
  try {
    return readFileSync(path, 'utf8').trim() === '1' ? 'on' : 'off';
  } catch {
    return 'off';
  }
}

/** Null when this Node and platform can bind with SO_REUSEPORT, else why not (one line). */
export function reusePortSupport(version = process.versions.node, platform = process.platform): string | null {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const supported = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
  if (!supported) return `\`--balance reuseport\` needs Node.js >= 22.12 (or >= 23.1); this is Node.js ${version}`;
  if (platform !== 'linux') return `\`--balance reuseport\` needs Linux (SO_REUSEPORT load balancing); this is ${platform}`;
  return null;
}
