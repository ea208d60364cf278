// Keeps track of every server the app starts: when all of them listen the worker is ready;
// on shutdown they are closed and drained; HTTP servers are counted for the loop stats.
import type http from 'node:http';
import net from 'node:net';
import type { TrafficCounters } from '../loop/types.js';

/** Live counters for one worker's HTTP traffic, read by the stats sampler. */
export const traffic: TrafficCounters = { requests: 0, inflight: 0, connections: 0 };

const servers = new Set<net.Server>();
const inflight = new Set<http.ServerResponse>();
let pendingListens = 0;
let draining = false;
let onSettled: (() => void) | null = null;

type HttpLike = net.Server & { closeIdleConnections?: () => void };

/** Wraps net.Server#listen so that every server the app starts is known to the runtime. */
export function installServerTracking(settled: () => void): void {
  onSettled = settled;
  const listen = net.Server.prototype.listen as (...args: unknown[]) => net.Server;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]): net.Server {
    track(this);
    pendingListens++;
    let done = false;
    const finish = (error?: unknown): void => {
      if (done) return;
      done = true;
      this.off('listening', finish);
      this.off('error', finish);
      pendingListens--;
      setImmediate(check);
      // Our listener must not swallow a listen error (EADDRINUSE...): with no 'error' listener
      // of the app's own, Node would throw it, and the worker must crash as it would alone.
      if (error instanceof Error && this.listenerCount('error') === 0) throw error;
    };
    this.once('listening', finish);
    this.once('error', finish);
    try {
      return listen.apply(this, args);
    } catch (error) {
      finish();
      throw error;
    }
  } as typeof net.Server.prototype.listen;
}

function track(server: net.Server): void {
  if (servers.has(server)) return;
  servers.add(server);
  server.on('connection', countConnection);
  // Only HTTP(S) servers emit 'request'; the listener costs nothing on others.
  server.prependListener('request' as 'connection', countRequest as never);
  server.once('close', () => servers.delete(server));
}

function countConnection(socket: net.Socket): void {
  traffic.connections++;
  socket.once('close', () => traffic.connections--);
}

function countRequest(_request: http.IncomingMessage, response: http.ServerResponse): void {
  traffic.requests++;
  traffic.inflight++;
  inflight.add(response);
  // While draining, every response tells the client not to reuse the connection.
  if (draining) response.shouldKeepAlive = false;
  response.once('close', () => {
    traffic.inflight--;
    inflight.delete(response);
  });
}

/** Ready once no listen() is pending and at least one server listens. */
function check(): void {
  if (pendingListens === 0 && [...servers].some((server) => server.listening)) onSettled?.();
}

/** `host:port`, with brackets around IPv6 addresses. */
export function formatAddress({ address, port }: { address: string; port: number }): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * How long a draining HTTP server keeps idle keep-alive connections open. A busy client sends
 * its next request within this time and gets `Connection: close` on the response, so it closes
 * the connection itself; closing an idle connection from the server side races a request the
 * client may be sending at that instant (ECONNRESET on the client). Only connections still idle
 * after this are closed by the server.
 */
const IDLE_SWEEP_MS = 1000;

/**
 * Stops accepting on every server, marks in-flight and later responses `Connection: close`,
 * closes connections still idle after IDLE_SWEEP_MS, and resolves once every server has
 * closed (all its connections ended).
 */
export function drainServers(): Promise<void> {
  draining = true;
  for (const response of inflight) {
    if (!response.headersSent) response.shouldKeepAlive = false;
  }
  const closing = [...servers].map(
    (server) =>
      new Promise<void>((resolve) => {
        if (!server.listening) {
          resolve();
          return;
        }
        const closeIdle = (server as HttpLike).closeIdleConnections;
        if (typeof closeIdle !== 'function') {
          server.close(() => resolve());
          return;
        }
        // http.Server#close (Node >= 19) closes idle connections at once; net.Server#close only
        // stops accepting, which lets keep-alive clients be told to leave first.
        net.Server.prototype.close.call(server, () => resolve());
        setTimeout(() => closeIdle.call(server), IDLE_SWEEP_MS).unref();
      }),
  );
  return Promise.all(closing).then(() => undefined);
}
