// Draining the app's servers on a graceful stop, and counting what is still open while it lasts.
import net from 'node:net';
import { closeSessions, longLivedOf } from './long-lived.js';
import { httpSockets, idleHttpSockets, markDraining, openServers, type CountedServer } from './servers.js';
import type { StillOpen } from '../protocol.js';

type HttpLike = net.Server & { closeIdleConnections?: () => void };

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
 * sends GOAWAY to HTTP/2 sessions, closes idle connections every IDLE_SWEEP_MS from then on, and
 * resolves once every server has closed (all its connections ended). Upgraded connections
 * (WebSockets) are left alone: they are the app's to close, in its shutdown handlers.
 */
export function drainServers(): Promise<void> {
  markDraining();
  // Responses whose headers are not written yet learn it when they are (servers.ts): the one that
  // answers a connection's last request read says `Connection: close`, not one with more queued behind.
  const servers = [...openServers()];
  const closing = servers.map(
    (server) =>
      new Promise<void>((resolve) => {
        if (!server.listening) {
          resolve();
          return;
        }
        const closeIdle = (server as HttpLike).closeIdleConnections;
        if (typeof closeIdle === 'function') {
          // http.Server#close (Node >= 19) would close idle connections at once, before keep-alive
          // clients can be told to leave; net.Server#close only stops accepting.
          // Every IDLE_SWEEP_MS while it lasts, not once: a response already under way when the drain
          // began went out with `Connection: keep-alive` (its headers had gone), and its connection
          // goes idle when it ends; after the first sweep nothing closed it, and it held the worker
          // to the app's keepAliveTimeout or --grace (a 2.5 s stream: killed at a 6 s --grace).
          const sweeps = setInterval(() => sweepIdle(server, closeIdle), IDLE_SWEEP_MS).unref();
          net.Server.prototype.close.call(server, () => {
            clearInterval(sweeps);
            resolve();
          });
        } else {
          // Others close their own way: http2's (Node >= 22) also closes its sessions (which
          // closeSessions() does on every version) and, with allowHTTP1, idle HTTP/1 connections.
          server.close(() => resolve());
        }
        closeOnceMore(server);
      }),
  );
  closeSessions();
  return Promise.all(closing).then(() => undefined);
}

/**
 * Closes the connections of an HTTP/1 server that carry no request: the idle keep-alive ones (Node's
 * closeIdleConnections), and those that have not sent a byte since they were accepted, which Node
 * counts as active from the start (its headers timeout covers them) and would keep open to --grace.
 */
function sweepIdle(server: net.Server, closeIdle: () => void): void {
  closeIdle.call(server);
  for (const socket of httpSockets(server)) if (!socket._httpMessage && socket.bytesRead === 0) socket.destroy();
}

/**
 * The app's own server.close() on a server the drain has closed already, from its shutdown
 * handlers, must work as on an open one: Node would call its callback with ERR_SERVER_NOT_RUNNING,
 * or never, once the server has emitted 'close'. Measured with @godaddy/terminus 4.12: its
 * stoppable server.stop() then rejects and terminus exits 1, or hangs until --grace; NestJS's
 * app.close() waits for that callback too. So the callback comes, without an error, when the
 * server has closed, and the close does what the app asked of its kind of server, except closing
 * idle keep-alive connections at once, as Node's http.Server#close does from Node 19: that is the
 * race IDLE_SWEEP_MS avoids, and an app that calls server.close() in its SIGTERM listener (as
 * Express's docs show) would have it on every stop and reload (measured: 36 to 84 ECONNRESET per
 * two reloads under keep-alive load). The drain's sweep closes the idle ones 1 s in instead.
 */
function closeOnceMore(server: net.Server): void {
  let closed = false;
  server.once('close', () => (closed = true));
  server.close = function (this: net.Server, callback?: (error?: Error) => void): net.Server {
    if (typeof callback === 'function') {
      if (closed) process.nextTick(callback);
      else this.once('close', () => callback());
    }
    closeSessions(this);
    return this;
  };
}

/** What is open now on every server of the app, by kind (onShutdown handlers are counted elsewhere). */
export function stillOpen(): Omit<StillOpen, 'handlers'> {
  const open = { requests: 0, receiving: 0, idle: 0, webSockets: 0, upgraded: 0, http2Sessions: 0, other: 0 };
  for (const server of openServers()) {
    const http = httpSockets(server);
    const idle = idleHttpSockets(server);
    for (const socket of http) {
      if (socket._httpMessage) open.requests++;
      // One that has not sent a byte carries no request either (the drain's sweep closes both kinds).
      else if (idle.has(socket) || socket.bytesRead === 0) open.idle++;
      // Its request's headers are partway in: no response yet, and not idle to Node (nor to the sweep).
      else open.receiving++;
    }
    const { sessions, webSockets, upgraded } = longLivedOf(server);
    open.http2Sessions += sessions;
    open.webSockets += webSockets;
    open.upgraded += upgraded;
    // Node counts every connection of a server; what is none of the above is another kind.
    open.other += Math.max(0, (server as CountedServer)._connections - http.length - sessions - webSockets - upgraded);
  }
  return open;
}
