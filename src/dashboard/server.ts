// --dashboard HOST:PORT or PATH: one page that shows every worker's loop over the last 15 minutes, live.
//   GET  /                        the page (index.html, stream.js, app.js, app.css: shipped as files, no CDN)
//   GET  /api/status              the snapshot as JSON: the window's history and markers
//   GET  /events                  server-sent events: the snapshot, then one update per tick
//   POST /api/reload              actions: with --dashboard-token only (Authorization: Bearer)
//   POST /api/restart/:id
//   POST /api/profile/:id?duration=5s   a CPU profile, as a .cpuprofile download
//   POST /api/loop/:id?duration=5s      where the loop spends its time (`clusterd loop --json`)
// The messages come from a DashboardSource and the actions run through DashboardActions: the
// master's own, or `clusterd dashboard`'s over the control plane. The only input read from a
// browser is the path, the duration and the Authorization header, all checked here. On TCP,
// without a token the dashboard is read-only (POST is 403); on a unix socket (owner-only, like
// the control socket) whoever can connect may act, and there is no Host to check.
import { readFileSync } from 'node:fs';
import { setTimeout as pause } from 'node:timers/promises';
import type http from 'node:http';
import type { DashboardActions } from './actions.js';
import type { DashboardMessage, DashboardSource, FeedMessage } from './feed.js';
import { tokenMatches } from '../control/auth.js';
import { METHOD_NOT_ALLOWED, startEndpoint, startSocketEndpoint } from '../control/http-endpoint.js';
import { listenUrl, type ListenAddress } from '../control/options.js';
import { LOOP_DURATION_MS, PROFILE_DURATION_MS, profileFileName } from '../control/requests.js';
import { WrongTokenBudget } from '../control/wrong-tokens.js';
import { isLoopback } from '../address.js';
import { ClusterdError, UsageError } from '../errors.js';
import { MAX_INSTANCES, parseDuration } from '../options.js';

/** Pages connected at once; past it /events is 503 (each costs the master a write per tick). */
export const MAX_STREAMS = 64;
/**
 * A page whose updates queue this far behind is dropped rather than queued for (it reconnects). Counted
 * past its snapshot, which may be larger (a 64-worker window is about 7 MB) and may take a slow link
 * longer than a tick: counted from the start, such a page was dropped at its first update, reconnected
 * to the same snapshot and never caught up.
 */
export const MAX_BACKLOG_BYTES = 1 << 20;

// From ../dashboard/page whether this runs as dist/dashboard/server.js, from the bundle
// (dist/bundle/, the same depth) or from src/ under tsx.
const PAGE_DIR = new URL('../dashboard/page/', import.meta.url);
const FILES = {
  '/': { name: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { name: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/stream.js': { name: 'stream.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { name: 'app.css', type: 'text/css; charset=utf-8' },
} as const;
// Only the page's own files run; nothing may frame it.
const PAGE_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

/** A capture's window when the page names none, as `clusterd profile` and `loop` default. */
export const DEFAULT_CAPTURE_MS = 5000;

export interface DashboardOptions {
  listen: ListenAddress;
  /** The cluster's name, for the profile's file name. */
  name: string;
  source: DashboardSource;
  /** What the buttons run (logged with who asked). */
  actions: DashboardActions;
  /** On TCP, --dashboard-token: actions need it as a bearer token; null: read-only. Unused on a socket. */
  token: string | null;
  /** How long a connection that moves nothing is kept (the endpoints' IDLE_TIMEOUT_MS; tests shorten it). A page's stream is exempt. */
  idleTimeoutMs?: number;
  /** The wrong tokens' budget per source (tests give one on a clock of their own). */
  wrongTokens?: WrongTokenBudget;
}

export interface DashboardServer {
  /** Where it listens, with the port the system chose for port 0. */
  address: ListenAddress;
  /** `http://host:port/`, or `unix:/path`. */
  url: string;
  /** Stops listening and ends the pages' streams. */
  close(): Promise<void>;
}

/** Serves the dashboard of `source`; rejects with a ListenError when the address cannot be bound. */
export async function startDashboard({ listen, name, source, actions, token, idleTimeoutMs, wrongTokens = new WrongTokenBudget() }: DashboardOptions): Promise<DashboardServer> {
  const files = new Map(Object.entries(FILES).map(([path, { name: file, type }]) => [path, { type, body: readFileSync(new URL(file, PAGE_DIR)) }]));
  const streams = new Set<http.ServerResponse>();
  const onSocket = 'path' in listen;
  const access: Access = onSocket ? { kind: 'socket' } : token === null ? { kind: 'read-only' } : { kind: 'token', token, wrongTokens };
  const snapshot = (): DashboardMessage => ({ ...source.snapshot(), actions: access.kind !== 'read-only', token: access.kind === 'token' });
  // Bound to a socket, a browser reaches it only through a tunnel (`ssh -L`) or a proxy (nginx names
  // a unix upstream `localhost`): to a loopback name, as a loopback address is.
  const host = onSocket ? 'localhost' : listen.host;
  const handlers = {
    flag: 'dashboard',
    ...(idleTimeoutMs === undefined ? {} : { idleTimeoutMs }),
    refuse: replyRefusal,
    serve: (path: string, response: http.ServerResponse, request: http.IncomingMessage) => {
      if (!hostAllowed(host, request.headers.host)) return refuseHost(response);
      const file = files.get(path);
      if (file) {
        response.writeHead(200, { ...PAGE_HEADERS, 'Content-Type': file.type, 'Content-Length': file.body.length });
        return void response.end(file.body);
      }
      if (path === '/api/status') return replyJson(response, 200, snapshot());
      if (path === '/events') {
        if (request.method !== 'HEAD') return stream(response, snapshot, source, streams);
        response.writeHead(200, EVENT_STREAM_HEADERS);
        return void response.end();
      }
      // An action asked with GET (a link, a typed URL): it exists, by POST only.
      if (parseAction(path)) {
        response.setHeader('Allow', 'POST');
        return replyRefusal(response, 405, `method ${request.method ?? ''} not allowed: ${path} is an action, asked with POST`, METHOD_NOT_ALLOWED);
      }
      replyRefusal(response, 404, 'not found: the dashboard serves /, /api/status and /events', 'ERR_CLUSTERD_NOT_FOUND');
    },
    // The actions are under /api/ (an unknown one is a 404 that names them); the page, its files,
    // /api/status and /events are read (POST there: 405, Allow: GET, HEAD).
    posts: (path: string) => path.startsWith('/api/') && path !== '/api/status',
    post: (path: string, request: http.IncomingMessage, response: http.ServerResponse) => {
      // No body is read: the path and the query say it all.
      request.resume();
      if (!hostAllowed(host, request.headers.host)) return refuseHost(response);
      void act(path, request, response, { name, access, actions }).catch((error: unknown) => replyError(response, error));
    },
  };
  const endpoint = 'path' in listen ? await startSocketEndpoint({ ...handlers, path: listen.path }) : await startEndpoint({ ...handlers, ...listen });
  const address: ListenAddress = 'path' in endpoint ? { path: endpoint.path } : endpoint.address;
  return {
    address,
    url: listenUrl(address),
    close: async () => {
      // Each page's stream is ended, not cut: a script following /events (curl) read a stop as a
      // broken transfer. A page whose backlog is queued is not waited for past STREAM_END_MS.
      const ended = [...streams].map((response) => new Promise<void>((resolve) => {
        response.once('close', resolve);
        response.end();
      }));
      await Promise.race([Promise.all(ended), pause(STREAM_END_MS, undefined, { ref: false })]);
      await endpoint.close();
    },
  };
}

/** How long a stop waits for the pages' streams to take their end. */
const STREAM_END_MS = 500;

/** Server-sent events: the snapshot, then the source's messages; the stream ends with the page. */
/** /events' answer, to GET and HEAD alike. */
const EVENT_STREAM_HEADERS = { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };

function stream(response: http.ServerResponse, snapshot: () => DashboardMessage, source: DashboardSource, streams: Set<http.ServerResponse>): void {
  // Pipelined behind another request on its connection (a page's EventSource never does that): it
  // would never reach its socket, yet hold a place and its backlog; 64 of them on one connection took
  // every place. The connection goes.
  if (!response.socket) return void response.req.socket.destroy();
  if (streams.size >= MAX_STREAMS) return replyRefusal(response, 503, `too many dashboards connected (at most ${MAX_STREAMS})`, 'ERR_CLUSTERD_BUSY');
  response.writeHead(200, EVENT_STREAM_HEADERS);
  // A page waits between updates (one per --stats-interval, which may be long): not an idle client.
  // A page that stops reading is dropped by its backlog below instead.
  response.socket?.setTimeout(0);
  streams.add(response);
  let allowed = MAX_BACKLOG_BYTES;
  const send = (message: DashboardMessage): void => {
    if (response.writableLength > allowed) return void response.destroy();
    const event = `data: ${JSON.stringify(message)}\n\n`;
    // Queued lengths count a string's characters, as this does.
    if (message.type === 'snapshot') allowed = response.writableLength + event.length + MAX_BACKLOG_BYTES;
    response.write(event);
  };
  send(snapshot());
  // A source may start over with a snapshot of its own (`clusterd dashboard` after a gap): the page's too.
  const unsubscribe = source.subscribe((message: FeedMessage) => send(message.type === 'snapshot' ? snapshot() : message));
  response.once('close', () => {
    unsubscribe();
    streams.delete(response);
  });
}

/**
 * The one line said at start when the dashboard listens on an address other than loopback, or null:
 * there any Host is answered, so its page and data are readable by whoever reaches the address (a web
 * page too, by DNS rebinding), and an action's token travels in plain HTTP.
 */
export function exposureWarning(listen: ListenAddress, token: string | null): string | null {
  if ('path' in listen || isLoopback(listen.host)) return null;
  const where = listenUrl(listen);
  const actions = token === null ? 'it is read-only (no token)' : 'its actions\' token is sent over plain HTTP';
  return `the dashboard on ${where} is not on a loopback address: its page and data (/api/status, /events) are readable by anyone who can reach it, whatever name they use (a web page too, by DNS rebinding), and ${actions}; keep it on 127.0.0.1, or put it behind TLS (a proxy with its own access control)`;
}

/**
 * Bound to a loopback address (or a socket), the dashboard answers only requests that name one
 * (Host): a web page elsewhere that points its own host name at 127.0.0.1 (DNS rebinding) gets
 * nothing. Bound to another address, people reach it by whatever name the machine has: any Host goes.
 */
export function hostAllowed(boundHost: string, hostHeader: string | undefined): boolean {
  if (!isLoopback(boundHost)) return true;
  const name = /^(\[[^\]]*\]|[^:]*)(?::\d{1,5})?$/.exec(hostHeader ?? '')?.[1] ?? '';
  return name !== '' && isLoopback(name);
}

/**
 * Why a POST comes from another site, or null. A browser says where a request comes from
 * (Sec-Fetch-Site; Origin on older ones), and a page elsewhere can POST a form or a no-cors fetch
 * to the dashboard without reading the answer: on a unix socket reached through `ssh -L` (no token
 * there) that reloaded and restarted workers. A program (curl, a script) sends neither header.
 */
export function crossSite(request: { headers: http.IncomingHttpHeaders }): string | null {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin' || site === 'none' ? null : `a ${site} request`;
  const origin = request.headers.origin;
  if (origin === undefined) return null;
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    return `an Origin that is not a URL`;
  }
  return originHost === request.headers.host ? null : `a request from ${originHost}`;
}

/** Who may act: nobody (TCP without a token), bearers of the token, or whoever reaches the socket. */
/** On TCP with a token, the wrong ones a source may present are budgeted, as on --control (wrong-tokens.ts). */
type Access = { kind: 'read-only' } | { kind: 'token'; token: string; wrongTokens: WrongTokenBudget } | { kind: 'socket' };

type Action = { kind: 'reload' } | { kind: 'restart' | 'profile' | 'loop'; id: number };

/** POST /api/reload, /api/{restart,profile,loop}/:id (id 1 to MAX_INSTANCES), or null. */
export function parseAction(path: string): Action | null {
  if (path === '/api/reload') return { kind: 'reload' };
  const match = /^\/api\/(restart|profile|loop)\/([1-9]\d{0,3})$/.exec(path);
  const id = Number(match?.[2]);
  return match && id <= MAX_INSTANCES ? { kind: match[1] as 'restart' | 'profile' | 'loop', id } : null;
}

/** Whether an Authorization header carries the token: 'missing' (no Bearer), 'wrong' or 'ok'. */
export function checkBearer(header: string | undefined, token: string): 'missing' | 'wrong' | 'ok' {
  // The scheme is case-insensitive (RFC 9110), the token not.
  const match = /^bearer ([\x21-\x7e][\x20-\x7e]*)$/i.exec(header ?? '');
  if (!match) return 'missing';
  return tokenMatches(token, match[1]!) ? 'ok' : 'wrong';
}

/**
 * A capture's `?duration=` (5s when absent), within what `clusterd profile` (100ms to 5m) or
 * `clusterd loop` (100ms to 1m) takes; a UsageError naming the parameter otherwise.
 */
export function captureDuration(url: string | undefined, kind: 'profile' | 'loop'): number {
  const query = new URLSearchParams((url ?? '').split('?')[1] ?? '');
  const given = query.getAll('duration');
  if (given.length > 1) throw new UsageError('Expected one `duration` parameter, got ' + String(given.length));
  if (given.length === 0) return DEFAULT_CAPTURE_MS;
  try {
    return parseDuration('duration', given[0]!.slice(0, 40), kind === 'profile' ? PROFILE_DURATION_MS : LOOP_DURATION_MS);
  } catch (error) {
    throw new UsageError((error as Error).message.replace('`--duration`', '`duration`'));
  }
}

async function act(
  path: string,
  request: http.IncomingMessage,
  response: http.ServerResponse,
  { name, access, actions }: Pick<DashboardOptions, 'name' | 'actions'> & { access: Access },
): Promise<void> {
  const action = parseAction(path);
  if (!action) return replyRefusal(response, 404, 'not found: actions are POST /api/reload, /api/restart/ID, /api/profile/ID and /api/loop/ID', 'ERR_CLUSTERD_NOT_FOUND');
  const foreign = crossSite(request);
  if (foreign) return replyRefusal(response, 403, `refused: ${foreign} (actions come from the dashboard's own page, or from a program)`, FORBIDDEN);
  if (access.kind === 'read-only') return replyRefusal(response, 403, 'read-only dashboard: actions need --dashboard-token (or a unix socket)', FORBIDDEN);
  if (access.kind === 'token') {
    const { source, retryAfterS } = access.wrongTokens.gate(request.socket.remoteAddress);
    if (retryAfterS > 0) {
      // Refused unchecked: a guess is not even tried while the source's budget is spent.
      response.setHeader('Retry-After', String(retryAfterS));
      return replyRefusal(response, 429, `too many wrong dashboard tokens from this address: its next action is checked in ${retryAfterS} s`, 'ERR_CLUSTERD_BUSY');
    }
    const auth = checkBearer(request.headers.authorization, access.token);
    if (auth !== 'ok') {
      if (auth === 'wrong') access.wrongTokens.spend(source);
      response.setHeader('WWW-Authenticate', 'Bearer');
      return replyRefusal(response, 401, auth === 'missing' ? 'missing `Authorization: Bearer <token>`' : 'wrong dashboard token', 'ERR_CLUSTERD_UNAUTHENTICATED');
    }
  }
  const who = `the dashboard (${access.kind === 'socket' ? 'unix socket' : (request.socket.remoteAddress ?? 'unknown')})`;
  // A capture nobody waits for any more (the page closed, the request was cancelled) ends early.
  const asker = new AbortController();
  response.once('close', () => {
    if (!response.writableFinished) asker.abort();
  });
  switch (action.kind) {
    case 'reload': {
      const { generation, replaced } = await actions.reload(who);
      return replyJson(response, 200, { generation, replaced });
    }
    case 'restart': {
      const { pid } = await actions.restart(action.id, who);
      return replyJson(response, 200, { id: action.id, pid });
    }
    case 'profile': {
      const result = await actions.profile(action.id, captureDuration(request.url, 'profile'), asker.signal);
      if (result.blocked) return replyBlocked(response, action.id, result.blocked);
      response.writeHead(200, {
        'Content-Type': 'application/json',
        'Content-Length': result.json.length,
        'Content-Disposition': `attachment; filename="${profileFileName(name, action.id)}"`,
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
      });
      return void response.end(result.json);
    }
    case 'loop': {
      const result = await actions.loop(action.id, captureDuration(request.url, 'loop'), asker.signal);
      if (result.blocked) return replyBlocked(response, action.id, result.blocked);
      return replyJson(response, 200, result.report);
    }
  }
}

/** 409: the worker's loop is blocked, so nothing was measured; its stack says where. */
function replyBlocked(response: http.ServerResponse, id: number, { blockedMs, stack }: { blockedMs: number; stack: string[] }): void {
  const error = `worker ${id}'s event loop is blocked (silent for ${(blockedMs / 1000).toFixed(1)} s): nothing was measured`;
  replyJson(response, 409, { error, code: 'ERR_CLUSTERD_BLOCKED', blockedMs, stack });
}

const STATUS_BY_CODE: Partial<Record<string, number>> = {
  ERR_CLUSTERD_NOT_FOUND: 404,
  ERR_CLUSTERD_NO_WORKER: 404,
  ERR_CLUSTERD_WORKER_GONE: 404,
  ERR_CLUSTERD_BUSY: 409,
  ERR_CLUSTERD_WORKER_EXITED: 409,
  ERR_CLUSTERD_STOPPING: 503,
  // `clusterd dashboard`: the cluster behind it stopped, or did not answer in time.
  ERR_CLUSTERD_NOT_RUNNING: 503,
  ERR_CLUSTERD_TIMEOUT: 504,
  ERR_CLUSTERD_USAGE: 400,
};

function replyError(response: http.ServerResponse, error: unknown): void {
  if (response.headersSent) return void response.destroy();
  const status = error instanceof ClusterdError ? (STATUS_BY_CODE[error.code] ?? 500) : 500;
  replyRefusal(response, status, error instanceof Error ? error.message : String(error), error instanceof ClusterdError ? error.code : 'ERR_CLUSTERD_INTERNAL');
}

/** 403's code: an action from another site's page, or on a read-only dashboard. */
const FORBIDDEN = 'ERR_CLUSTERD_FORBIDDEN';

/** 421: a Host that is not a loopback name, on a dashboard bound to loopback (DNS rebinding). */
function refuseHost(response: http.ServerResponse): void {
  replyRefusal(response, 421, 'this dashboard answers to a loopback name only (Host: localhost, 127.0.0.1 or [::1])', 'ERR_CLUSTERD_MISDIRECTED');
}

/** Every error the dashboard answers is JSON `{"error", "code"}`, for the page and for programs alike. */
function replyRefusal(response: http.ServerResponse, status: number, error: string, code: string): void {
  replyJson(response, status, { error, code });
}

function replyJson(response: http.ServerResponse, status: number, body: object): void {
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  response.end(text);
}
