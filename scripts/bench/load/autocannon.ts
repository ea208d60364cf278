// autocannon (the devDependency), used as a library in the benchmark's own process when wrk is missing.
// For a new connection per request it uses `reconnectRate: 1` plus `Connection: close`. autocannon 8
// does not count a response that triggers such a reconnect (httpClient.js returns before emitting
// 'response'), so this module counts responses, statuses and latencies itself from each client's
// 'request' and 'headers' events, the same way for every workload.
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { LoadGenerator, LoadResult, LoadRun } from './types.js';

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
}

interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  timeout: number;
  reconnectRate?: number;
  headers?: Record<string, string>;
  requests: AutocannonRequest[];
  setupClient: (client: AutocannonClient) => void;
}

interface AutocannonClient extends EventEmitter {
  conn?: Socket;
}

interface AutocannonRequest {
  method: string;
  path: string;
  setupRequest?: (request: AutocannonRequest) => AutocannonRequest;
}

/**
 * One request whose path walks the workload's cycle with a single counter shared by all clients,
 * as one wrk thread does. (A list of 1,550 requests would be built again for every client, and
 * every client would reach the slow request at the same moment.)
 */
function requestFor(paths: string[]): AutocannonRequest {
  if (paths.length === 1) return { method: 'GET', path: paths[0] ?? '/' };
  let next = 0;
  return {
    method: 'GET',
    path: '/',
    setupRequest: (request) => ({ ...request, path: paths[next++ % paths.length] ?? '/' }),
  };
}

type Autocannon = (options: AutocannonOptions) => Promise<AutocannonResult>;

const require = createRequire(import.meta.url);

/** A LoadGenerator running autocannon in this process. */
export function createAutocannon(): LoadGenerator {
  const autocannon = require('autocannon') as Autocannon;
  const { version } = require('autocannon/package.json') as { version: string };
  return {
    name: 'autocannon',
    version,
    connectionPerRequest: 'autocannon with `reconnectRate: 1` and `Connection: close`: each client opens a new connection after every response',
    roundDuration: (seconds) => seconds,
    async run(run: LoadRun): Promise<LoadResult> {
      const latencies: number[] = [];
      let non2xx = 0;
      const result = await autocannon({
        url: `http://127.0.0.1:${run.port}`,
        connections: run.connections,
        duration: run.durationS,
        timeout: run.timeoutS,
        ...(run.workload.keepAlive ? {} : { reconnectRate: 1, headers: { connection: 'close' } }),
        requests: [requestFor(run.workload.paths)],
        setupClient(client) {
          // One request in flight per client (no pipelining): 'request' starts it, 'headers' ends it.
          // Like wrk, time from when the connection can carry the request, not from connect().
          let started = 0;
          client.on('request', () => {
            started = performance.now();
            if (client.conn?.connecting) {
              client.conn.once('connect', () => {
                started = performance.now();
              });
            }
          });
          client.on('headers', ({ statusCode }: { statusCode: number }) => {
            latencies.push(performance.now() - started);
            if (statusCode < 200 || statusCode > 299) non2xx++;
          });
        },
      });
      latencies.sort((x, y) => x - y);
      const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
      const socket = result.errors - result.timeouts;
      return {
        requests: latencies.length,
        durationS: result.duration,
        rps: latencies.length / result.duration,
        latencyMs: { p50: at(0.5), p99: at(0.99), max: latencies.at(-1) ?? 0 },
        errors: { socket, non2xx, timeouts: result.timeouts, total: socket + non2xx + result.timeouts },
      };
    },
  };
}
