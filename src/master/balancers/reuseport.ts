// reuseport: each worker binds a socket of its own to the address with SO_REUSEPORT and the
// kernel spreads connections over them by a hash of the client's address and port (not by
// load). The master binds one too, without listening, only to hold the port (and to learn it
// for `listen(0)`) while workers come and go. Needs Node >= 22.12 (23.1 on the 23 line) on Linux:
// checked at start (see reusePortSupport). Before Linux 5.14, connections still in a closing
// worker's accept queue are dropped with it.
import { bindShared } from './bind.js';
import type { BalancedWorker, Balancer, RawHandle } from './types.js';
import type { ListenQuery, SockName } from '../../protocol.js';

/** libuv's UV_TCP_REUSEPORT (1.49+). */
export const UV_TCP_REUSEPORT = 2;

export class ReusePortBalancer implements Balancer {
  readonly key: string;
  readonly sockname: SockName;
  #handle: RawHandle | null;
  readonly #workers = new Set<BalancedWorker>();

  private constructor(key: string, handle: RawHandle, sockname: SockName) {
    this.key = key;
    this.#handle = handle;
    this.sockname = sockname;
  }

  static async open(query: ListenQuery): Promise<ReusePortBalancer> {
    const { handle, sockname } = bindShared({ ...query, flags: query.flags | UV_TCP_REUSEPORT });
    return new ReusePortBalancer(query.key, handle, sockname);
  }

  get size(): number {
    return this.#workers.size;
  }

  add(worker: BalancedWorker, seq: number): void {
    this.#workers.add(worker);
    worker.send({ cmd: 'clusterd:listen-reply', seq, errno: 0, mode: 'reuseport', sockname: this.sockname });
  }

  remove(worker: BalancedWorker): void {
    this.#workers.delete(worker);
  }

  activate(): void {
    // Each worker accepts on its own socket as soon as it listens.
  }

  ack(): void {
    // No handoffs.
  }

  close(): void {
    this.#handle?.close();
    this.#handle = null;
    this.#workers.clear();
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
