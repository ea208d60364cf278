// Open-loop transport for keep-alive: a pool of at most `max` connections, all opened before the first
// request is due, one request in flight on each (no pipelining). A due request goes to the connection
// that has been idle longest (first in, first out): each connection then stands for one client among
// many, every connection carries a share of the load, and where the balancer put a connection decides
// where its requests run. (Last in, first out would keep reusing the few connections that answered
// fastest and route around a stalled worker by itself, hiding what (e) measures.) With no idle
// connection, a new one is opened if the pool has room (after a close), else the engine queues. A
// response that ends its connection (`Connection: close`, which clusterd's fair mode sends to move a
// client to another worker) retires it at once: it is closed and a new one takes its place in the
// pool, as an HTTP client would do, and its connect lands in the next request's latency. Sending on it
// again would charge the system with errors no real client sees.
import net from 'node:net';
import { ProtocolError, ResponseParser } from './http-response.js';
import { failureOf } from './open-loop-tally.js';
import type { Transport, TransportContext } from './transport.js';

interface Connection {
  socket: net.Socket;
  parser: ResponseParser;
  /** The request in flight on it, -1 when idle. */
  index: number;
  connected: boolean;
  closed: boolean;
  /** The next one in the idle queue. */
  next: Connection | undefined;
}

export class KeepAlivePool implements Transport {
  /** Connections open or opening. */
  private size = 0;
  private readonly busy = new Set<Connection>();
  /** Idle connections, oldest first (a linked queue: O(1) at both ends). */
  private idleHead: Connection | undefined;
  private idleTail: Connection | undefined;

  constructor(
    private readonly context: TransportContext,
    private readonly max: number,
  ) {}

  get inFlight(): number {
    return this.busy.size;
  }

  /** Opens all `max` connections and waits until each has connected or failed. */
  async open(): Promise<void> {
    const opening: Array<Promise<void>> = [];
    for (let i = 0; i < this.max; i++) {
      const connection = this.connect();
      opening.push(
        new Promise((resolve) => {
          connection.socket.once('connect', () => resolve());
          connection.socket.once('close', () => resolve());
        }),
      );
      this.pushIdle(connection);
    }
    await Promise.all(opening);
  }

  tryStart(index: number): boolean {
    const connection = this.popIdle() ?? (this.size < this.max ? this.connect() : undefined);
    if (!connection) return false;
    connection.index = index;
    this.busy.add(connection);
    // Written before the connect completes, Node holds the bytes until it does.
    connection.socket.write(this.context.request(index));
    return true;
  }

  expire(deadlineMs: number): void {
    for (const connection of this.busy) {
      if (this.context.tally.due(connection.index) >= deadlineMs) continue;
      this.context.tally.fail('timeouts', connection.index);
      this.release(connection);
      connection.socket.destroy();
    }
  }

  close(): void {
    for (let connection = this.idleHead; connection; connection = connection.next) connection.socket.destroy();
    for (const connection of this.busy) connection.socket.destroy();
  }

  private connect(): Connection {
    const { context } = this;
    const socket = net.connect({ host: context.host, port: context.port, noDelay: true });
    const connection: Connection = { socket, parser: new ResponseParser(), index: -1, connected: false, closed: false, next: undefined };
    this.size++;
    context.tally.connections++;
    socket.once('connect', () => {
      connection.connected = true;
    });
    socket.on('data', (chunk: Buffer) => {
      if (connection.index < 0) {
        // Bytes nobody asked for: the connection is out of step; drop it.
        socket.destroy();
        return;
      }
      let status: number;
      try {
        status = connection.parser.push(chunk);
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        context.tally.fail('read', connection.index);
        this.release(connection);
        socket.destroy();
        return;
      }
      if (!status) return;
      context.tally.complete(connection.index, status);
      this.release(connection);
      if (connection.parser.closes) this.replace(connection);
      else this.pushIdle(connection);
      context.freed();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (connection.index < 0) return;
      context.tally.fail(failureOf(error, connection.connected), connection.index);
      this.release(connection);
    });
    socket.once('close', () => {
      if (connection.closed) return; // retired by replace(), which counted it
      connection.closed = true;
      this.size--;
      // A body that ends at close completes; the connection is gone either way.
      const status = connection.index >= 0 ? connection.parser.end() : 0;
      if (status) {
        context.tally.complete(connection.index, status);
        this.release(connection);
      } else if (connection.index >= 0) {
        // Closed with a request in flight and no error event: the server hung up on it.
        context.tally.fail(connection.connected ? 'read' : 'connect', connection.index);
        this.release(connection);
      }
      // The pool has room again: a waiting request may open a new connection.
      context.freed();
    });
    return connection;
  }

  /** Closes a connection the server said it would close, and opens a new one in its place. */
  private replace(connection: Connection): void {
    connection.closed = true;
    this.size--;
    connection.socket.destroy();
    this.context.tally.reconnects++;
    this.pushIdle(this.connect());
  }

  /** The connection no longer holds a request. */
  private release(connection: Connection): void {
    connection.index = -1;
    this.busy.delete(connection);
  }

  private pushIdle(connection: Connection): void {
    if (connection.closed) return;
    connection.next = undefined;
    if (this.idleTail) this.idleTail.next = connection;
    else this.idleHead = connection;
    this.idleTail = connection;
  }

  /** The connection idle longest; closed ones (the server's idle timeout) are dropped on the way. */
  private popIdle(): Connection | undefined {
    while (this.idleHead) {
      const connection = this.idleHead;
      this.idleHead = connection.next;
      if (!this.idleHead) this.idleTail = undefined;
      connection.next = undefined;
      if (!connection.closed) return connection;
    }
    return undefined;
  }
}
