// The seam between the open-loop engine (pacing, queue, timeouts) and a connection mode: a new
// connection per request (fresh-connections.ts) or a keep-alive pool (keep-alive-pool.ts).
import type { Tally } from './open-loop-tally.js';

export interface TransportContext {
  host: string;
  port: number;
  /** The pre-formatted bytes of request `index`. */
  request(index: number): Buffer;
  tally: Tally;
  /** A connection slot came free: the engine starts waiting requests. */
  freed(): void;
}

/** How the engine drives a connection mode. */
export interface Transport {
  /** Opens what must exist before the first request is due (the keep-alive pool). */
  open(): Promise<void>;
  /** Sends request `index` now if a connection is free; false when it has to wait for one. */
  tryStart(index: number): boolean;
  /** Aborts requests in flight that were due before `deadlineMs`, counting them as timeouts. */
  expire(deadlineMs: number): void;
  /** Connections holding a request; a new connection per request counts until its socket has closed. */
  readonly inFlight: number;
  close(): void;
}
