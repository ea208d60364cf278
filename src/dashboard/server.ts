// --dashboard HOST:PORT: one page that shows every worker's loop over the last 15 minutes, live.
//   GET  /                   the page (index.html, app.js, app.css: shipped as files, no CDN)
//   GET  /api/status         the snapshot as JSON: the window's history and markers
//   GET  /events             server-sent events: the snapshot, then one update per tick
//   POST /api/reload         with --dashboard-token only (Authorization: Bearer)
//   POST /api/restart/:id    with --dashboard-token only
// Every message is the master's own; the only input read from a browser is the path and the
// Authorization header, both checked here. Without a token the dashboard is read-only: POST is 403.
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { DashboardFeed, type DashboardMessage } from './feed.js';
import { tokenMatches } from '../control/auth.js';
import { replyText, startEndpoint, type Endpoint } from '../control/http-endpoint.js';
import type { TcpAddress } from '../control/options.js';
import { ClusterdError } from '../errors.js';
import type { LogSink } from '../master/logs.js';
import type { Supervisor } from '../master/supervisor.js';
import type { ControlOperations } from '../master/status.js';
import { MAX_INSTANCES } from '../options.js';

/** Pages connected at once; past it /events is 503 (each costs the master a write per tick). */
export const MAX_STREAMS = 64;
/** A page that reads this far behind is dropped rather than queued for (it reconnects). */
const MAX_BACKLOG_BYTES = 1 << 20;

// From ../dashboard/page whether this runs as dist/dashboard/server.js, from the bundle
// (dist/bundle/, the same depth) or from src/ under tsx.
const PAGE_DIR = new URL('../dashboard/page/', import.meta.url);
const FILES = {
  '/': { name: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { name: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { name: 'app.css', type: 'text/css; charset=utf-8' },
} as const;
// Only the page's own files run; nothing may frame it.
const PAGE_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

export interface DashboardOptions extends TcpAddress {
  supervisor: Supervisor;
  logs: LogSink;
  /** reload and restart, as the control plane runs them (logged with who asked). */
  operations: Pick<ControlOperations, 'reload' | 'restart'>;
  /** --dashboard-token: actions need it as a bearer token; null: read-only. */
  token: string | null;
}

export type DashboardServer = Endpoint & { feed: DashboardFeed };

/** Starts following the master and serves the dashboard; rejects with a ListenError when the address cannot be bound. */
export async function startDashboard({ host, port, supervisor, logs, operations, token }: DashboardOptions): Promise<DashboardServer> {
  const files = new Map(Object.entries(FILES).map(([path, { name, type }]) => [path, { type, body: readFileSync(new URL(name, PAGE_DIR)) }]));
  const feed = new DashboardFeed({ supervisor, logs, actions: token !== null });
  const streams = new Set<http.ServerResponse>();
  const endpoint = await startEndpoint({
    flag: 'dashboard',
    host,
    port,
    serve: (path, response, request) => {
      if (!hostAllowed(host, request.headers.host)) return replyText(response, 421, 'this dashboard answers to its loopback address only\n');
      const file = files.get(path);
      if (file) {
        response.writeHead(200, { ...PAGE_HEADERS, 'Content-Type': file.type, 'Content-Length': file.body.length });
        return void response.end(file.body);
      }
      if (path === '/api/status') return replyJson(response, 200, feed.snapshot());
      if (path === '/events') return request.method === 'HEAD' ? replyText(response, 200, '') : stream(response, feed, streams);
      replyText(response, 404, 'not found: the dashboard serves /, /api/status and /events\n');
    },
    post: (path, request, response) => {
      // No body is read: the path says it all.
      request.resume();
      if (!hostAllowed(host, request.headers.host)) return replyText(response, 421, 'this dashboard answers to its loopback address only\n');
      void act(path, request, response, { token, operations }).catch((error: unknown) => replyError(response, error));
    },
  }).catch((error: unknown) => {
    feed.close();
    throw error;
  });
  return {
    ...endpoint,
    feed,
    close: async () => {
      feed.close();
      for (const response of streams) response.destroy();
      await endpoint.close();
    },
  };
}

/** Server-sent events: the snapshot, then the feed's updates; the stream ends with the page. */
function stream(response: http.ServerResponse, feed: DashboardFeed, streams: Set<http.ServerResponse>): void {
  if (streams.size >= MAX_STREAMS) return replyText(response, 503, `too many dashboards connected (at most ${MAX_STREAMS})\n`);
  response.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  streams.add(response);
  const send = (message: DashboardMessage): void => {
    if (response.writableLength > MAX_BACKLOG_BYTES) return void response.destroy();
    response.write(`data: ${JSON.stringify(message)}\n\n`);
  };
  send(feed.snapshot());
  const unsubscribe = feed.subscribe(send);
  response.once('close', () => {
    unsubscribe();
    streams.delete(response);
  });
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|::1|localhost)$/i;

/**
 * Bound to a loopback address, the dashboard answers only requests that name one (Host): a web page
 * elsewhere that points its own host name at 127.0.0.1 (DNS rebinding) gets nothing. Bound to
 * another address, people reach it by whatever name the machine has: any Host goes.
 */
export function hostAllowed(boundHost: string, hostHeader: string | undefined): boolean {
  if (!LOOPBACK.test(boundHost)) return true;
  const name = /^(\[[^\]]*\]|[^:]*)(?::\d{1,5})?$/.exec(hostHeader ?? '')?.[1] ?? '';
  return LOOPBACK.test(name);
}

type Action = { kind: 'reload' } | { kind: 'restart'; id: number };

/** POST /api/reload, /api/restart/:id (id 1 to MAX_INSTANCES), or null. */
export function parseAction(path: string): Action | null {
  if (path === '/api/reload') return { kind: 'reload' };
  const match = /^\/api\/restart\/([1-9]\d{0,3})$/.exec(path);
  const id = Number(match?.[1]);
  return match && id <= MAX_INSTANCES ? { kind: 'restart', id } : null;
}

/** Whether an Authorization header carries the token: 'missing' (no Bearer), 'wrong' or 'ok'. */
export function checkBearer(header: string | undefined, token: string): 'missing' | 'wrong' | 'ok' {
  const match = /^Bearer ([\x21-\x7e][\x20-\x7e]*)$/.exec(header ?? '');
  if (!match) return 'missing';
  return tokenMatches(token, match[1]!) ? 'ok' : 'wrong';
}

async function act(path: string, request: http.IncomingMessage, response: http.ServerResponse, { token, operations }: Pick<DashboardOptions, 'token' | 'operations'>): Promise<void> {
  const action = parseAction(path);
  if (!action) return replyJson(response, 404, { error: 'not found: actions are POST /api/reload and /api/restart/ID' });
  if (token === null) return replyJson(response, 403, { error: 'read-only dashboard: actions need clusterd start --dashboard-token' });
  const auth = checkBearer(request.headers.authorization, token);
  if (auth !== 'ok') {
    response.setHeader('WWW-Authenticate', 'Bearer');
    return replyJson(response, 401, { error: auth === 'missing' ? 'missing `Authorization: Bearer <token>`' : 'wrong dashboard token' });
  }
  const who = `the dashboard (${request.socket.remoteAddress ?? 'unknown'})`;
  if (action.kind === 'reload') {
    const { generation, replaced } = await operations.reload({ parallel: 1 }, () => {}, who);
    return replyJson(response, 200, { generation, replaced });
  }
  const { pid } = await operations.restart(action.id, () => {}, who);
  replyJson(response, 200, { id: action.id, pid });
}

const STATUS_BY_CODE: Partial<Record<string, number>> = {
  ERR_CLUSTERD_NOT_FOUND: 404,
  ERR_CLUSTERD_NO_WORKER: 404,
  ERR_CLUSTERD_BUSY: 409,
  ERR_CLUSTERD_STOPPING: 503,
  ERR_CLUSTERD_USAGE: 400,
};

function replyError(response: http.ServerResponse, error: unknown): void {
  if (response.headersSent) return void response.destroy();
  const status = error instanceof ClusterdError ? (STATUS_BY_CODE[error.code] ?? 500) : 500;
  replyJson(response, status, { error: error instanceof Error ? error.message : String(error), ...(error instanceof ClusterdError ? { code: error.code } : {}) });
}

function replyJson(response: http.ServerResponse, status: number, body: object): void {
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  response.end(text);
}
