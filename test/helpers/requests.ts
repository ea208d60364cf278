// Small clients for the socket tests: JSON over http/https/unix sockets, a raw TCP echo, a
// Prometheus scrape, a free port, and "ask until every worker answered".
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { get, waitFor } from './cluster.js';

/** What the fixtures answer with: at least the pid of the worker that served the request. */
export interface Answer {
  pid: number;
  [key: string]: unknown;
}

/** GET on 127.0.0.1:port (a new connection each time, or one of `agent`'s), parsed as JSON; throws unless 200. */
export async function getJson<T extends Answer = Answer>(port: number, path = '/', { agent = false as http.Agent | false } = {}): Promise<T> {
  const response = await get(port, path, { agent });
  if (response.status !== 200) throw new Error(`GET ${path} on port ${port}: status ${response.status}`);
  return JSON.parse(response.body) as T;
}

/** GET over http or https (self-signed certificates accepted) or a unix socket, parsed as JSON. */
export function requestJson<T extends Answer = Answer>(
  target: { port: number; tls?: boolean } | { socketPath: string },
  path = '/',
): Promise<T> {
  return new Promise((resolve, reject) => {
    const tls = 'port' in target && target.tls === true;
    const options = 'port' in target ? { host: '127.0.0.1', port: target.port } : { socketPath: target.socketPath };
    const request = (tls ? https : http).get({ ...options, path, agent: false, timeout: 10_000, rejectUnauthorized: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        if (response.statusCode !== 200) reject(new Error(`GET ${path}: status ${response.statusCode}`));
        else resolve(JSON.parse(body) as T);
      });
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('request timed out')));
    request.on('error', reject);
  });
}

/**
 * Connects to a TCP server that greets with `<pid>\n` and then echoes; sends `text` and
 * resolves with the greeting's pid and what came back.
 */
export function tcpEcho(port: number, text: string): Promise<{ pid: number; echo: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('utf8');
    socket.setTimeout(10_000, () => socket.destroy(new Error('tcp echo timed out')));
    socket.on('connect', () => socket.write(text));
    socket.on('data', (chunk: string) => {
      data += chunk;
      const newline = data.indexOf('\n');
      if (newline !== -1 && data.length >= newline + 1 + text.length) {
        socket.destroy();
        resolve({ pid: Number(data.slice(0, newline)), echo: data.slice(newline + 1) });
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`connection closed after ${JSON.stringify(data)}`)));
  });
}

/** Repeats `ask` (one new connection each) until every pid in `pids` has answered; returns the last answer of each. */
export async function untilEveryWorker<T extends { pid: number }>(
  ask: () => Promise<T>,
  pids: readonly number[],
  { what = 'an answer from every worker', timeoutMs = 20_000 } = {},
): Promise<Map<number, T>> {
  const answers = new Map<number, T>();
  await waitFor(
    async () => {
      const answer = await ask();
      answers.set(answer.pid, answer);
      return pids.every((pid) => answers.has(pid));
    },
    { what: `${what} (pids ${pids.join(', ')}; so far ${[...answers.keys()].join(', ')})`, timeoutMs, intervalMs: 1 },
  );
  return answers;
}

/** What a load loop saw: answers per pid, failures by message. */
export interface LoadStats {
  ok: number;
  failed: number;
  byPid: Map<number, number>;
  errors: string[];
  /** The pid of the latest answer. */
  lastPid: number;
}

/**
 * Runs `concurrency` request loops (one new connection per request, on a port or a unix socket; on a
 * port, the connections `agent` keeps alive if given) until stop() is awaited.
 */
export function loadLoop(
  target: number | { socketPath: string },
  { concurrency = 4, path = '/', agent = false as http.Agent | false } = {},
): { stats: LoadStats; stop(): Promise<LoadStats> } {
  const stats: LoadStats = { ok: 0, failed: 0, byPid: new Map(), errors: [], lastPid: 0 };
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      try {
        const { pid } = await (typeof target === 'number' ? getJson(target, path, { agent }) : requestJson(target, path));
        stats.ok++;
        stats.lastPid = pid;
        stats.byPid.set(pid, (stats.byPid.get(pid) ?? 0) + 1);
      } catch (error) {
        stats.failed++;
        stats.errors.push((error as Error).message);
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(loops);
      return stats;
    },
  };
}

/**
 * The pids of processes holding the socket that listens on 127.0.0.1:port (from /proc/net/tcp
 * and each candidate's fd table): in rr mode only the master, in shared mode every worker too.
 */
export function listenerHolders(port: number, candidates: readonly number[]): number[] {
  const wanted = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const row = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((fields) => fields[1] === wanted && fields[3] === '0A');
  if (!row) throw new Error(`no socket listens on 127.0.0.1:${port}`);
  return holdersOf(`socket:[${row[9]}]`, candidates);
}

/** The same for the unix socket that listens on `path` (/proc/net/unix: flags __SO_ACCEPTCON). */
export function unixListenerHolders(path: string, candidates: readonly number[]): number[] {
  const row = readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((fields) => fields[3] === '00010000' && fields[7] === path);
  if (!row) throw new Error(`no unix socket listens on ${path}`);
  return holdersOf(`socket:[${row[6]}]`, candidates);
}

function holdersOf(target: string, candidates: readonly number[]): number[] {
  return candidates.filter((pid) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`) === target;
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  });
}

/**
 * Opens a connection to the unix socket at `path`, asks GET / and keeps the connection open:
 * resolves with the JSON answer and the socket, which the caller destroys.
 */
export function holdUnixConnection<T extends Answer = Answer>(path: string): Promise<{ answer: T; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    let data = '';
    socket.setEncoding('utf8');
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: clusterd\r\n\r\n'));
    socket.on('data', (chunk: string) => {
      data += chunk;
      const end = data.indexOf('\r\n\r\n');
      const length = Number(/^content-length: *(\d+)/im.exec(data.slice(0, end))?.[1] ?? NaN);
      if (end === -1 || !(data.length >= end + 4 + length)) return;
      socket.setTimeout(0);
      socket.removeAllListeners('close');
      resolve({ answer: JSON.parse(data.slice(end + 4, end + 4 + length)) as T, socket });
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`connection closed after ${JSON.stringify(data)}`)));
  });
}

/** How many file descriptors the process has open. */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** A port on 127.0.0.1 nobody listens on now (bound, then closed): for an app that must listen on a fixed port. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** One /metrics scrape: each sample's series (name and labels, as written) and its value. */
export async function scrape(url: string): Promise<Map<string, number>> {
  const samples = new Map<string, number>();
  for (const line of (await (await fetch(url)).text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}
