// Keeps track of every server the app starts: when all of them listen the worker is ready;
// on shutdown they are closed and drained (drain.ts); HTTP servers are counted for the loop stats.
//
// The counting is always on, so it must cost next to nothing per request: an HTTP/1 request is
// counted by a wrapper of ServerResponse#assignSocket (one call, no closure, no listener), open
// connections are Node's own count per server (`_connections`), and requests in flight are read,
// when a sample is taken, off the list of connections Node's HTTP server keeps anyway (for its
// request timeouts, and for closeIdleConnections()). A 'request' listener plus a 'close' listener on
// every response, as this did at first, cost a hello-world worker about 2% of its throughput; a
// 'connection' listener keeping a set of sockets, 2-2.5 us of the 75 us a new connection and its
// request cost. Only other servers that emit 'request' (http2's compatibility API) get a listener.
import http from 'node:http';
import net from 'node:net';
import { exclusiveTarget, reportExclusive } from './exclusive.js';
import { trackLongLived } from './long-lived.js';
import type { TrafficCounters } from '../loop/types.js';
import type { SockName } from '../protocol.js';

/** A connection of an HTTP/1 server: the response it is writing now, if any (Node's own field). */
export type HttpSocket = net.Socket & { _httpMessage?: http.ServerResponse | null };
/** Node's own count of a server's open connections. */
export type CountedServer = net.Server & { _connections: number };

/** Node's list of an HTTP/1 server's connections: parsers, each with its socket (lib/_http_server.js). */
interface ConnectionsList {
  all(): Array<{ socket?: HttpSocket | null }>;
  /** Those between two requests (no message begun since the last one completed). */
  idle(): Array<{ socket?: HttpSocket | null }>;
}
let connectionsSymbol: symbol | undefined;

/** Node's own list of an HTTP/1 server's (http or https) connections, set up once it listens; none for other servers. */
function connectionsOf(server: net.Server): ConnectionsList | undefined {
  connectionsSymbol ??= Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === 'http.server.connections');
  const list = connectionsSymbol ? (server as unknown as Record<symbol, ConnectionsList | undefined>)[connectionsSymbol] : undefined;
  return typeof list?.all === 'function' ? list : undefined;
}

function openSockets(parsers: Array<{ socket?: HttpSocket | null }>): HttpSocket[] {
  const found: HttpSocket[] = [];
  for (const parser of parsers) if (parser.socket && !parser.socket.destroyed) found.push(parser.socket);
  return found;
}

/** The open connections of an HTTP/1 server (http or https); none for other servers. */
export function httpSockets(server: net.Server): HttpSocket[] {
  const list = connectionsOf(server);
  return list ? openSockets(list.all()) : [];
}

/**
 * The connections of an HTTP/1 server that Node counts as idle: kept alive between two requests.
 * Not one that has sent nothing yet, nor one with a request's headers partway in: Node counts
 * those as active (its headers timeout covers them).
 */
export function idleHttpSockets(server: net.Server): Set<HttpSocket> {
  const list = connectionsOf(server);
  return new Set(typeof list?.idle === 'function' ? openSockets(list.idle()) : []);
}
// Responses of servers other than HTTP/1 (http2) not yet closed.
let otherInflight = 0;

/** Live counters for one worker's HTTP traffic, read by the stats sampler. */
export const traffic: TrafficCounters = {
  requests: 0,
  get connections(): number {
    let count = 0;
    for (const server of servers) count += (server as CountedServer)._connections;
    return count;
  },
  /** Responses being written: one per HTTP/1 connection at most (pipelined ones wait), plus http2's. */
  get inflight(): number {
    let count = otherInflight;
    for (const server of servers) for (const socket of httpSockets(server)) if (socket._httpMessage) count++;
    return count;
  },
};

const servers = new Set<net.Server>();
let pendingListens = 0;
let draining = false;
let onSettled: (() => void) | null = null;
let onListening: ((listening: boolean) => void) | null = null;
/** A server listened (or a UDP socket was bound) once: from then on, a close of every one is reported. */
let listenedOnce = false;
/** onSettled was called: the worker is ready (unless the app says so itself, --wait-ready). */
let settled = false;
/** The last thing reported to onListening: every server closed. */
let closedEvery = false;

/** Every server the app started that has not closed yet (one being drained is still here). */
export function openServers(): ReadonlySet<net.Server> {
  return servers;
}

/** From now on every HTTP/1 connection is ended after the response to its last request read (`Connection: close`). */
export function markDraining(): void {
  draining = true;
}

/**
 * Wraps net.Server#listen so that every server the app starts is known to the runtime: `onReady`
 * once they listen; after that, `onChange(false)` when the app has closed every one of them (its
 * own server.close(), not a drain), and `onChange(true)` when one listens again.
 */
export function installServerTracking({ onReady, onChange }: { onReady: () => void; onChange: (listening: boolean) => void }): void {
  onSettled = onReady;
  onListening = onChange;
  countHttpResponses();
  endConnectionsWhenDue();
  followCloses();
  const listen = net.Server.prototype.listen as (...args: unknown[]) => net.Server;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]): net.Server {
    track(this);
    pendingListens++;
    let done = false;
    let exclusive = exclusiveTarget(args);
    const finish = (error?: unknown): void => {
      if (done) return;
      done = true;
      this.off('listening', finish);
      this.off('error', finish);
      pendingListens--;
      if (this.listening) listenedOnce = true;
      setImmediate(check);
      if (exclusive) reportExclusive(this, exclusive, error);
      // Our listener must not swallow a listen error (EADDRINUSE...): with no 'error' listener
      // of the app's own, Node would throw it, and the worker must crash as it would alone. Emitted
      // again rather than thrown here, so that the crash reads as it would alone too (Node's
      // "Unhandled 'error' event", not a line of clusterd's), and from a tick of its own, as Node
      // emits it: the trace under "Emitted 'error' event" shows no frame of clusterd's.
      if (error instanceof Error && this.listenerCount('error') === 0) process.nextTick(this.emit.bind(this), 'error', error);
    };
    this.once('listening', finish);
    // Before the app's own 'error' listener, which may end the process: the master hears first.
    this.prependOnceListener('error', finish);
    try {
      return listen.apply(this, args);
    } catch (error) {
      // Refused at the call (a bad port): nothing was bound, nor tried.
      exclusive = null;
      finish();
      throw error;
    }
  } as typeof net.Server.prototype.listen;
}

/**
 * Set on a server by fair's acceptor: asked once per HTTP/1 response that would keep its connection
 * open and answers the last request read on it, true when it should end it instead (`Connection: close`), so that the client's next request
 * opens a new connection, which another worker takes.
 */
export const kEndsConnection = Symbol('clusterd.endsConnection');

/** Node 20's net.Server applies maxConnections only when truthy; from Node 21 (nodejs/node#48276) whenever set, so 0 refuses every connection. */
const ZERO_REFUSES = Number(process.versions.node.split('.')[0]) >= 21;

/**
 * The app's own limit as this Node applies it (net.Server refuses a connection while it holds
 * maxConnections or more, so a negative one refuses every connection: 0 here), or null where none
 * applies (unset; 0 on Node 20; NaN; not a number).
 */
export function ceilingOf(server: net.Server): number | null {
  const max: unknown = server.maxConnections;
  if (typeof max !== 'number' || Number.isNaN(max) || (max === 0 && !ZERO_REFUSES)) return null;
  return Math.min(2 ** 31 - 1, Math.max(0, Math.ceil(max)));
}

/** The server holds as many connections as its app's own maxConnections lets it: Node would refuse the next. */
export function atOwnLimit(server: CountedServer): boolean {
  const ceiling = ceilingOf(server);
  return ceiling !== null && server._connections >= ceiling;
}
type EndingServer = net.Server & { [kEndsConnection]?: (socket: net.Socket) => boolean };

/** Set on a connection whose client was seen pipelining (sending requests before reading answers). */
const kPipelines = Symbol('clusterd.pipelines');
/** The request's connection, with Node's parser of it (lib/_http_server.js), and the server that accepted it. */
type RequestSocket = net.Socket & { parser?: { incoming?: unknown } | null; server?: EndingServer; [kPipelines]?: true };

/**
 * Node's HTTP/1 server (http and https) hands every response its socket with assignSocket, once
 * the responses before it on the connection are done: one call per request, the place to count it.
 */
function countHttpResponses(): void {
  const proto = http.ServerResponse.prototype as http.ServerResponse & { assignSocket(socket: net.Socket): void };
  const assignSocket = proto.assignSocket;
  proto.assignSocket = function (this: http.ServerResponse, socket: net.Socket): void {
    traffic.requests++;
    // A later request was read before this response got the socket: the client pipelines (see rebalances()).
    const parser = (socket as RequestSocket).parser;
    if (parser && parser.incoming !== this.req) (socket as RequestSocket)[kPipelines] = true;
    assignSocket.call(this, socket);
  };
}

type WriteHead = (this: http.ServerResponse, statusCode: number, reason?: unknown, headers?: unknown) => http.ServerResponse;

/**
 * Ends a connection (`Connection: close`) when draining, or when fair's rebalancing asks it, on the
 * response that answers the connection's last request read so far. Node writes the header with the
 * response's headers (writeHead, which _implicitHeader calls too), and after a response that said
 * close it destroys the socket, discarding the pipelined requests queued behind it: decided at
 * assignSocket, as this was at first, the first response of a pipelined batch said close and the 9
 * requests behind it were never answered. So while a later request has been read on the
 * connection (the parser holds a newer one than this response's), the connection stays open and the
 * last response read says close. (One call per response, no closure, no listener.)
 *
 * A handler that answers synchronously, inside the parser's call, writes its headers before the
 * requests that follow in the same read are parsed: nothing tells them apart from a lone request
 * then, and the ones behind it are dropped as Node drops them after any `Connection: close`. A drain
 * must end the connection all the same; fair's rebalancing need not (rebalances()).
 */
function endConnectionsWhenDue(): void {
  const proto = http.ServerResponse.prototype as unknown as { writeHead: WriteHead; writeHeader?: WriteHead };
  const writeHead = proto.writeHead;
  const wrapped: WriteHead = function (this: http.ServerResponse, statusCode, reason, headers) {
    if (this.shouldKeepAlive) {
      // (A response built by hand, as test tools do, may have no request or socket.)
      const socket = this.req?.socket as RequestSocket | null | undefined;
      // (`server`, not `_server`: a TLS socket has only the former.)
      // The last request read on the connection: none is queued behind this response.
      if (socket && socket.parser?.incoming === this.req) {
        if (draining || (rebalances(this.req, socket) && socket.server?.[kEndsConnection]?.(socket) === true)) this.shouldKeepAlive = false;
      }
    }
    return writeHead.call(this, statusCode, reason, headers);
  };
  proto.writeHead = wrapped;
  // Node's old alias of writeHead, the same function.
  if (proto.writeHeader === writeHead) proto.writeHeader = wrapped;
}

/**
 * Whether fair's rebalancing may end the connection on this response: not while its request is
 * still being read (answered inside the parser's call, or before its body is in) on a connection
 * seen pipelining, where requests read in the same turn would be dropped behind the close.
 */
function rebalances(request: http.IncomingMessage, socket: RequestSocket): boolean {
  return request.complete || socket[kPipelines] !== true;
}

/** Servers whose events are followed already: a server closed and listened again keeps its listeners. */
const instrumented = new WeakSet<net.Server>();

function track(server: net.Server): void {
  if (servers.has(server)) return;
  servers.add(server);
  server.once('close', () => servers.delete(server));
  if (instrumented.has(server)) return;
  instrumented.add(server);
  trackLongLived(server);
  // The first request tells what kind of server this is: HTTP/1's are counted by assignSocket,
  // others (http2) from here on by a listener. Servers that never emit 'request' keep none.
  server.prependOnceListener('request' as 'connection', ((request: unknown, response: unknown) => {
    if (response instanceof http.ServerResponse) return;
    server.prependListener('request' as 'connection', countOtherRequest as never);
    countOtherRequest(request, response as OtherResponse);
  }) as never);
}

interface OtherResponse {
  once(event: 'close', listener: () => void): unknown;
}

function countOtherRequest(_request: unknown, response: OtherResponse): void {
  traffic.requests++;
  otherInflight++;
  response.once('close', () => otherInflight--);
}

/**
 * server.close() stops listening at once (`listening` turns false), while its 'close' event waits
 * for the last connection to end: judged right after the call. (http, https, tls and http2 servers
 * all close through net.Server#close, which they look up when called.)
 */
function followCloses(): void {
  const close = net.Server.prototype.close as (...args: unknown[]) => net.Server;
  net.Server.prototype.close = function (this: net.Server, ...args: unknown[]): net.Server {
    const server = close.apply(this, args);
    // Only the app's own close of a server it listened on can change what is reported; a drain's never does.
    if (servers.has(this) && !draining) setImmediate(check);
    return server;
  } as typeof net.Server.prototype.close;
}

/** UDP sockets bound on a fixed port (through the master): an app that serves only UDP is ready too. */
let datagramsBound = 0;

/**
 * A UDP socket of the app's is bound on a fixed port (not one a client sends from, on port 0);
 * returns what to call when it closes.
 */
export function datagramBound(): () => void {
  datagramsBound++;
  listenedOnce = true;
  setImmediate(check);
  let bound = true;
  return () => {
    if (!bound) return;
    bound = false;
    datagramsBound--;
    setImmediate(check);
  };
}

/**
 * Ready once no listen() is pending and at least one server listens (or a UDP socket serves a port).
 * After a first listen, the app's own closes of every server, and its listening again, are reported:
 * judged a turn of the loop after the close, with a listen() still pending counting as listening, so
 * that a server closed and listened again at once (in its close callback) reports nothing. A drain's
 * closes (a stop, cluster.worker.disconnect()) are never reported. A change goes before the ready:
 * the master reads them in that order.
 */
function check(): void {
  if (pendingListens > 0) return;
  const listening = datagramsBound > 0 || [...servers].some((server) => server.listening);
  if (listenedOnce && !draining && listening === closedEvery) {
    closedEvery = !listening;
    onListening?.(listening);
  }
  if (listening && !settled) {
    settled = true;
    onSettled?.();
  }
}

/**
 * getsockname for a stand-in listening handle: the master's socket's address while open. None for
 * a unix socket, whose server.address() is then its path as the app gave it (Node's `_pipeName`).
 */
export function standInSockname(sockname: SockName | null, isOpen: () => boolean): ((out: Partial<SockName>) => number) | undefined {
  if (sockname?.port === -1) return undefined;
  return (out) => {
    if (isOpen() && sockname) Object.assign(out, sockname);
    return 0;
  };
}
