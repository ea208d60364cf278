// The master binds once and gives every worker a copy of the listening socket; the workers
// accept for themselves and the kernel decides who gets each connection (unevenly: Node's
// docs report over 70% of connections going to two of eight processes).
import type { ListenQuery, SockName } from '../../protocol.js';
import { bindShared } from './bind.js';
import type { BalancedWorker, Balancer, RawHandle } from './types.js';

export class SharedBalancer implements Balancer {
  readonly key: string;
  readonly sockname: SockName;
  #handle: RawHandle | null;
  readonly #workers = new Set<BalancedWorker>();

  private constructor(key: string, handle: RawHandle, sockname: SockName) {
    this.key = key;
    this.#handle = handle;
    this.sockname = sockname;
  }

  /** Binds the address in the master; throws a BindError. */
  static async open(query: ListenQuery): Promise<SharedBalancer> {
    const { handle, sockname } = bindShared(query);
    return new SharedBalancer(query.key, handle, sockname);
  }

  get size(): number {
    return this.#workers.size;
  }

  add(worker: BalancedWorker, seq: number): void {
    this.#workers.add(worker);
    worker.send({ cmd: 'clusterd:listen-reply', seq, errno: 0, mode: 'shared', sockname: this.sockname }, this.#handle!);
  }

  remove(worker: BalancedWorker): void {
    this.#workers.delete(worker);
  }

  activate(): void {
    // The worker accepts from the shared socket as soon as it listens; nothing to start.
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
