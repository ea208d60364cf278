// Open-loop transport for "a new connection per request": connect when the request's turn comes, send
// it with `Connection: close`, read the response, and close as soon as it is complete, as wrk does
// (its TIME_WAIT on loopback ports is reused: net.ipv4.tcp_tw_reuse defaults to 2, loopback only). At
// most `max` connections are open at once; past that the engine queues requests and the wait counts
// in their latency.
import net from 'node:net';
import { ProtocolError, ResponseParser } from './http-response.js';
import { failureOf } from './open-loop-tally.js';
import type { Transport, TransportContext } from './transport.js';

interface Attempt {
  socket: net.Socket;
  index: number;
  connected: boolean;
  /** The request has its outcome (response, error or timeout); later events change nothing. */
  settled: boolean;
}

export class FreshConnections implements Transport {
  private readonly live = new Set<Attempt>();

  constructor(
    private readonly context: TransportContext,
    private readonly max: number,
  ) {}

  get inFlight(): number {
    return this.live.size;
  }

  async open(): Promise<void> {}

  tryStart(index: number): boolean {
    if (this.live.size >= this.max) return false;
    const { context } = this;
    const socket = net.connect({ host: context.host, port: context.port, noDelay: true });
    const attempt: Attempt = { socket, index, connected: false, settled: false };
    const parser = new ResponseParser();
    this.live.add(attempt);
    context.tally.connections++;
    socket.once('connect', () => {
      attempt.connected = true;
      socket.write(context.request(index));
    });
    socket.on('data', (chunk: Buffer) => {
      if (attempt.settled) return;
      let status: number;
      try {
        status = parser.push(chunk);
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        if (claim(attempt)) context.tally.fail('read', index);
        socket.destroy();
        return;
      }
      if (!status || !claim(attempt)) return;
      context.tally.complete(index, status);
      socket.destroy();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (claim(attempt)) context.tally.fail(failureOf(error, attempt.connected), index);
    });
    socket.once('close', () => {
      // A body that ends at close is complete; anything else cut short is a read error.
      if (claim(attempt)) {
        const status = parser.end();
        if (status) context.tally.complete(index, status);
        else context.tally.fail(attempt.connected ? 'read' : 'connect', index);
      }
      this.live.delete(attempt);
      context.freed();
    });
    return true;
  }

  expire(deadlineMs: number): void {
    for (const attempt of this.live) {
      if (this.context.tally.due(attempt.index) >= deadlineMs) continue;
      if (claim(attempt)) this.context.tally.fail('timeouts', attempt.index);
      attempt.socket.destroy();
    }
  }

  close(): void {
    for (const attempt of this.live) attempt.socket.destroy();
  }
}

/** Marks the request's outcome as decided; false if it already was (later events change nothing). */
function claim(attempt: Attempt): boolean {
  if (attempt.settled) return false;
  attempt.settled = true;
  return true;
}
