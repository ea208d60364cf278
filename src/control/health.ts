// --health HOST:PORT: the probes an orchestrator (Kubernetes, a load balancer) asks the master.
//   GET /livez   200 while the master's loop turns (an answer at all says so)
//   GET /readyz  200 while at least one worker is ready and the cluster is not stopping (nor waiting
//                out --shutdown-delay); 503 otherwise. Both answer a line of JSON saying why.
import type http from 'node:http';
import { replyText, startEndpoint, type Endpoint } from './http-endpoint.js';

export const LIVE_PATH = '/livez';
export const READY_PATH = '/readyz';

/** What /readyz reports; `ready` decides 200 or 503. */
export interface Readiness {
  ready: boolean;
  /** Workers ready and not blocked now, the ready ones whose loop is blocked, and all workers asked for. */
  workersReady: number;
  workersBlocked?: number;
  workers: number;
  /** Stopping, or waiting out --shutdown-delay before it drains. */
  stopping: boolean;
}

export interface HealthServerOptions {
  host: string;
  port: number;
  readiness(): Readiness;
  onError?: (error: Error) => void;
}

/** Serves /livez and /readyz on host:port; rejects with a ListenError when the address cannot be bound. */
export function startHealthServer({ host, port, readiness, onError }: HealthServerOptions): Promise<Endpoint> {
  return startEndpoint({ flag: 'health', host, port, onError, serve: (path, response) => serve(path, response, readiness) });
}

function serve(path: string, response: http.ServerResponse, readiness: () => Readiness): void {
  if (path === LIVE_PATH) return replyJson(response, 200, { live: true });
  if (path === READY_PATH) {
    const state = readiness();
    return replyJson(response, state.ready ? 200 : 503, state);
  }
  replyText(response, 404, `not found: health is served at ${LIVE_PATH} and ${READY_PATH}\n`);
}

function replyJson(response: http.ServerResponse, status: number, body: object): void {
  const text = `${JSON.stringify(body)}\n`;
  // Never cached: a probe must see the state now.
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  response.end(text);
}
