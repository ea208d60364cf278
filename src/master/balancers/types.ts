import type { AcceptorLoad, AcceptorReport, ListenQuery, MasterMessage, SockName } from '../../protocol.js';
import type { WorkerLoad } from './choose.js';

/** A libuv handle as Node passes it around: a listening socket or an accepted connection. */
export interface RawHandle {
  close(callback?: () => void): void;
  getsockname?(out: Partial<SockName>): number;
  getpeername?(out: Partial<SockName>): number;
  listen?(backlog: number): number;
  onconnection?: ((status: number, handle: RawHandle) => void) | null;
  /** Its file descriptor (Unix). */
  readonly fd?: number;
}

/** What a balancer needs of a worker: its id and a way to send it a message with a handle. */
export interface BalancedWorker {
  readonly id: number;
  /**
   * True while the worker may be given connections: once it listens (or, under --wait-ready,
   * once the app said it is ready), until it drains or exits.
   */
  readonly accepting: boolean;
  /** True once the process is gone: it will never acknowledge a connection it was sent. */
  readonly exited: boolean;
  /** Queues the message (in order, whatever is before it); false only when its channel is closed. */
  send(message: MasterMessage, handle?: RawHandle): boolean;
  /** Its latest known load, for `least`. */
  load(): WorkerLoad;
}

/**
 * One listening address shared by the workers that listen on it. Mirrors Node's
 * RoundRobinHandle / SharedHandle: add a worker and answer its listen request, remove it.
 */
export interface Balancer {
  readonly key: string;
  readonly sockname: SockName | null;
  /** A UDP socket the workers receive on (no connections): not one of the addresses clients connect to. */
  readonly datagram?: boolean;
  /** Registers the worker and sends it the listen reply (with the listening handle in shared mode). */
  add(worker: BalancedWorker, seq: number): void;
  /** Stops routing to the worker; in-flight connections are re-routed or closed. */
  remove(worker: BalancedWorker): void;
  /** The worker became ready to take connections (under --wait-ready, after it listened). */
  activate(worker: BalancedWorker): void;
  /** A worker acknowledged (or refused) connection `id`. */
  ack(worker: BalancedWorker, id: number, accepted: boolean): void;
  /** The worker's loop health changed (it stalled, or its latest sample crossed the lag threshold). */
  health?(worker: BalancedWorker): void;
  /** `fair`: a worker's report on accepting from its own copy of the socket. */
  report?(worker: BalancedWorker, message: AcceptorReport | AcceptorLoad): void;
  /** How many workers share this address. */
  readonly size: number;
  /**
   * Closes the listening socket but keeps what was accepted (a stop): resolves once every connection
   * queued in the master has been taken by a worker. Without it, close() is all there is.
   */
  stopAccepting?(): Promise<void>;
  /** Closes the listening socket and any connection still queued. */
  close(): void;
}

/** What a balancer may ask of the cluster beyond its own workers. */
export interface BalancerContext {
  /** The worker ids the cluster is configured for now (1 to --instances, as scaled), started or not. */
  ids(): readonly number[];
  /** A line for the master's log. */
  warn(event: string, message: string, data: Record<string, unknown>): void;
}

/** Opens a balancer for one address: binds, or rejects with a negative libuv errno. */
export type BalancerFactory = (query: ListenQuery) => Promise<Balancer>;

export const BALANCE_MODES = ['fair', 'rr', 'least', 'sticky', 'shared', 'reuseport'] as const;
export type BalanceMode = (typeof BALANCE_MODES)[number];
