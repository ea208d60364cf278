// The master's small HTTP listeners (--metrics, --health, --dashboard): bound before the first worker
// forks, answering GET and HEAD on their paths (and POST where `post` is given), never taking the
// master down on an accept error.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ListenError, UsageError } from '../errors.js';
import { formatControlAddress } from './options.js';
import { claimSocketFile, releaseSocketFile } from './socket-file.js';

export interface EndpointOptions {
  /** The flag, for messages: `metrics` names `--metrics`. */
  flag: string;
  host: string;
  /** 0 picks a free port; `address.port` tells which. */
  port: number;
  /** Answers a GET or HEAD of `path` (the URL without its query). */
  serve(path: string, response: http.ServerResponse, request: http.IncomingMessage): void;
  /** Answers a POST of `path`; without it, POST is 405 like any other method. */
  post?(path: string, request: http.IncomingMessage, response: http.ServerResponse): void;
  /** Whether `path` takes POST (then only POST), when `post` is given: by default every path takes GET, HEAD and POST. */
  posts?(path: string): boolean;
  /** How this endpoint answers a request it refuses itself (a method it does not take); by default a line of text. */
  refuse?: Refuse;
  /** Errors after the server is listening (an accept failing with EMFILE); they never stop it. */
  onError?: (error: Error) => void;
  /** Connections open at once; past it, a new one takes the place of the oldest idle one (default MAX_ENDPOINT_CONNECTIONS). */
  maxConnections?: number;
  /** A connection with nothing read or written this long is closed (default IDLE_TIMEOUT_MS). */
  idleTimeoutMs?: number;
}

/**
 * The most connections one listener holds open: scrapers, probes and dashboard pages are few, and
 * each holds buffers (a status snapshot for a client that does not read) in the master.
 */
export const MAX_ENDPOINT_CONNECTIONS = 256;

/**
 * A connection that moves no byte either way this long is closed: a client that sent its request and
 * never reads the answer (a multi-MB /api/status of a large cluster) held that answer in the master
 * for good. Far above any scrape or probe; a stream that is meant to wait (the dashboard's events)
 * turns it off for its own socket.
 */
export const IDLE_TIMEOUT_MS = 60_000;

/** Writes a refusal: its HTTP status, one line saying why, and a stable code for programs. */
export type Refuse = (response: http.ServerResponse, status: number, error: string, code: string) => void;

/** The default Refuse: the line alone, as text (metrics and health answer text). */
const refuseAsText: Refuse = (response, status, error) => replyText(response, status, `${error}\n`);

export interface Endpoint {
  address: { host: string; port: number };
  /** Stops listening and drops open connections (scrapers and probes keep theirs alive). */
  close(): Promise<void>;
}

/** Listens on host:port; rejects with a ListenError when the address cannot be bound. */
export async function startEndpoint({ flag, host, port, serve, post, posts, refuse = refuseAsText, onError = () => {}, maxConnections = MAX_ENDPOINT_CONNECTIONS, idleTimeoutMs = IDLE_TIMEOUT_MS }: EndpointOptions): Promise<Endpoint> {
  if (typeof host !== 'string' || host === '') {
    throw new UsageError(`Expected the \`--${flag}\` host to be a non-empty string, got \`${String(host)}\``);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new UsageError(`Expected the \`--${flag}\` port to be an integer from 0 to 65535, got \`${String(port)}\``);
  }
  const server = createServer({ serve, post, posts }, refuse, maxConnections, idleTimeoutMs);
  await listen(server, { host, port }, onError).catch((error: NodeJS.ErrnoException) => {
    throw new ListenError(`cannot serve ${flag} on ${formatControlAddress({ host, port })}: ${describeListenError(error)}`, error);
  });
  const bound = (server.address() as AddressInfo).port;
  return { address: { host, port: bound }, close: () => closeServer(server) };
}

export type SocketEndpointOptions = Omit<EndpointOptions, 'host' | 'port'> & { path: string };

/**
 * Listens on the unix socket `path` (absolute), owner-only (0600): whoever can connect is this
 * user. Rejects with a ListenError when it cannot be bound (in use, not a socket, no directory).
 */
export async function startSocketEndpoint({ flag, path, serve, post, posts, refuse = refuseAsText, onError = () => {}, maxConnections = MAX_ENDPOINT_CONNECTIONS, idleTimeoutMs = IDLE_TIMEOUT_MS }: SocketEndpointOptions): Promise<{ path: string; close(): Promise<void> }> {
  const server = createServer({ serve, post, posts }, refuse, maxConnections, idleTimeoutMs);
  let inode: number;
  try {
    inode = await claimSocketFile(path, (temporary) => listen(server, { path: temporary }, onError));
  } catch (error) {
    if (server.listening) await closeServer(server);
    throw new ListenError(`cannot serve ${flag} on ${path}: ${describeListenError(error as NodeJS.ErrnoException)}`, error);
  }
  return {
    path,
    close: async () => {
      releaseSocketFile(path, inode);
      await closeServer(server);
    },
  };
}

/**
 * Requests one connection may have waiting for their answers (HTTP/1.1 pipelining). Each is built in
 * full when it is read, so 200 `GET /api/status` in one write made the master build and hold 200
 * snapshots, its loop blocked meanwhile; past this the connection is closed. Scrapers, probes and
 * browsers send one at a time.
 */
export const MAX_PIPELINED = 8;

/** The code of a 405, for an endpoint that answers refusals in JSON. */
export const METHOD_NOT_ALLOWED = 'ERR_CLUSTERD_METHOD_NOT_ALLOWED';

/** A client that has not sent its whole request head within this is closed (Node's default is 60 s). */
const HEADERS_TIMEOUT_MS = 10_000;

/**
 * The path a request asks for, without its query: from the usual origin form (`/metrics?x`), or the
 * absolute form (`http://host/metrics`), which a server must accept (RFC 9112, 3.2.2): it was looked
 * up as a path whole, and every endpoint answered 404.
 */
export function requestPath(target = '/'): string {
  const path = !target.startsWith('/') && URL.canParse(target) ? new URL(target).pathname : target;
  return path.split('?')[0]!;
}

function createServer({ serve, post, posts }: Pick<EndpointOptions, 'serve' | 'post' | 'posts'>, refuse: Refuse, maxConnections: number, idleTimeoutMs: number): http.Server {
  // Requests read and not answered yet, per open connection, oldest connection first.
  const open = new Map<Socket, number>();
  const server = http.createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: 2 * HEADERS_TIMEOUT_MS, connectionsCheckingInterval: 1000 }, (request, response) => {
    const socket = request.socket;
    const pending = (open.get(socket) ?? 0) + 1;
    if (socket.destroyed) return;
    if (pending > MAX_PIPELINED) {
      socket.destroy();
      return;
    }
    open.set(socket, pending);
    response.once('close', () => {
      if (open.has(socket)) open.set(socket, Math.max(0, (open.get(socket) ?? 1) - 1));
    });
    const path = requestPath(request.url);
    const takesPost = post !== undefined && (posts?.(path) ?? true);
    if (takesPost && request.method === 'POST') return post(path, request, response);
    // HEAD is GET without the body (Node's http drops it); both are safe for a probe to send.
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      const onlyPost = takesPost && posts !== undefined;
      response.setHeader('Allow', onlyPost ? 'POST' : takesPost ? 'GET, HEAD, POST' : 'GET, HEAD');
      refuse(response, 405, `method ${request.method ?? ''} not allowed: use ${onlyPost ? 'POST' : takesPost ? 'GET or POST' : 'GET'}`, METHOD_NOT_ALLOWED);
      return;
    }
    serve(path, response, request);
  });
  // At the limit a newcomer takes the place of the oldest connection that waits for nothing (an idle
  // one: a cap that refused newcomers was filled by 256 connections that sent nothing, and locked
  // out the probes: Kubernetes restarts a pod whose liveness probe cannot connect). Only when every
  // connection has a request in progress is the newcomer closed.
  server.on('connection', (socket: Socket) => {
    if (open.size >= maxConnections) {
      let idle: Socket | undefined;
      for (const [candidate, pending] of open) {
        if (pending === 0) {
          idle = candidate;
          break;
        }
      }
      if (!idle) {
        socket.destroy();
        return;
      }
      open.delete(idle);
      idle.destroy();
    }
    open.set(socket, 0);
    socket.once('close', () => open.delete(socket));
  });
  // With no 'timeout' listener, Node destroys a socket idle this long.
  server.timeout = idleTimeoutMs;
  return server;
}

function listen(server: http.Server, options: { host: string; port: number } | { path: string }, onError: (error: Error) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      // Node emits accept failures as 'error' on the server; unheard, one would take the master down.
      server.on('error', (error) => onError(error));
      resolve();
    });
  });
}

/** Stops listening and drops open connections (scrapers, probes and pages keep theirs alive). */
function closeServer(server: http.Server): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}

export function replyText(response: http.ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  response.end(text);
}

function describeListenError(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'EADDRINUSE':
      return 'address already in use';
    case 'EACCES':
      return 'permission denied';
    case 'ENOENT':
      return 'no such directory';
    case 'EADDRNOTAVAIL':
      return 'address not available on this machine';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name could not be resolved';
    default:
      return error.message;
  }
}
