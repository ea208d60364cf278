// Starts the real CLI (`bin/clusterd.js start ... --log-format json`) and follows its output.
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as tick } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../bin/clusterd.js', import.meta.url));

/** Absolute path of a file under test/fixtures. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
}

/** One JSON line of the master's output: a worker's log line, or a master event. */
export interface OutputLine {
  time: string;
  worker: number | null;
  pid: number;
  stream: 'stdout' | 'stderr' | 'master';
  message: string;
  event?: string;
  [key: string]: unknown;
}

export interface Cluster {
  process: ResultPromise;
  masterPid: number;
  /** The first port the cluster listens on. */
  port: number;
  /** Worker pids at ready, by worker id order. */
  pids: number[];
  /** Every JSON line so far. */
  lines: OutputLine[];
  /** Every stderr line so far. */
  stderr: string[];
  /** Resolves with the master's exit code once it has exited. */
  exited: Promise<number | undefined>;
  /** Resolves with the first line (already seen or future) that matches. */
  waitForLine(match: (line: OutputLine) => boolean, timeoutMs?: number): Promise<OutputLine>;
  /** Sends a signal and waits for the master to exit; resolves with its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | undefined>;
}

export interface StartOptions {
  instances?: number;
  /** Extra clusterd flags. */
  flags?: string[];
  /** Arguments for the app, after `--`. */
  appArgs?: string[];
  env?: Record<string, string>;
  /** The directory clusterd starts in (default: this process's). */
  cwd?: string;
  /** How long to wait for the ready event. */
  readyTimeoutMs?: number;
}

/** A master started by launch(): its output is followed; it may or may not get ready. */
export interface Launched {
  process: ResultPromise;
  /** Every stdout line so far, parsed as JSON (a non-JSON line becomes event `non-json`). */
  lines: OutputLine[];
  /** Every stderr line so far. */
  stderr: string[];
  /** Resolves with the first line (already seen or future) that matches. */
  waitForLine(match: (line: OutputLine) => boolean, timeoutMs?: number): Promise<OutputLine>;
  /** Resolves with the master's exit code once it has exited. */
  exited: Promise<number | undefined>;
}

/**
 * Runs `clusterd ...args` (pass `--log-format json` for parsed lines) and follows its output.
 * `wrap` is a command that execs the master in turn (`setpriv --reuid=... --`): the pid stays the master's.
 * `node` and `cli` run another node or another copy of clusterd than this checkout's; `cwd` is the
 * directory it starts in.
 */
export function launch(
  args: string[],
  { env = {}, wrap = [], node = process.execPath, cli = CLI, cwd }: { env?: Record<string, string>; wrap?: string[]; node?: string; cli?: string; cwd?: string } = {},
): Launched {
  // A master registers its cluster name in the runtime directory, and tests running at once
  // start clusters of the same name (hello.js...): unless the caller chose a directory, each
  // master gets one of its own.
  const runtime = env.CLUSTERD_RUNTIME_DIR || process.env.CLUSTERD_RUNTIME_DIR ? null : mkdtempSync(join(tmpdir(), 'clusterd-test-'));
  if (runtime) env = { ...env, CLUSTERD_RUNTIME_DIR: runtime };
  const command = [...wrap, node, cli, ...args];
  // execa SIGKILLs a child still running 5 s after kill('SIGTERM') by default: a graceful stop a
  // loaded box makes slower (a drain, a --shutdown-delay) would end with no exit code. A minute.
  const child = execa(command[0]!, command.slice(1), { env, reject: false, buffer: false, stdin: 'ignore', forceKillAfterDelay: 60_000, ...(cwd ? { cwd } : {}) });
  if (runtime) void child.then(() => rmSync(runtime, { recursive: true, force: true }));
  const lines: OutputLine[] = [];
  const waiters = new Set<{ match: (line: OutputLine) => boolean; resolve: (line: OutputLine) => void }>();
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: OutputLine;
    try {
      line = JSON.parse(text) as OutputLine;
    } catch {
      line = { time: '', worker: null, pid: 0, stream: 'master', message: text, event: 'non-json' };
    }
    lines.push(line);
    for (const waiter of waiters) {
      if (waiter.match(line)) {
        waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  });
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (text) => stderr.push(text));
  const exited = child.then((result) => result.exitCode);

  const waitForLine = (match: (line: OutputLine) => boolean, timeoutMs = 20_000): Promise<OutputLine> => {
    const seen = lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve: (line: OutputLine) => (clearTimeout(timer), resolve(line)) };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching output line within ${timeoutMs} ms; stderr: ${stderr.join(' | ')}`));
      }, timeoutMs);
      waiters.add(waiter);
      void exited.then(() => {
        if (!waiters.has(waiter)) return;
        waiters.delete(waiter);
        clearTimeout(timer);
        reject(new Error(`clusterd exited before a matching line; stderr: ${stderr.join(' | ')}`));
      });
    });
  };
  return { process: child, lines, stderr, waitForLine, exited };
}

/** Starts a cluster and resolves once it printed its ready event. */
export async function startCluster(entry: string, options: StartOptions = {}): Promise<Cluster> {
  const { instances = 2, flags = [], appArgs = [], env = {}, cwd, readyTimeoutMs = 20_000 } = options;
  const args = ['start', entry, '-i', String(instances), '--log-format', 'json', ...flags];
  if (appArgs.length > 0) args.push('--', ...appArgs);
  const { process: child, lines, stderr, waitForLine, exited } = launch(args, { env, cwd });

  const ready = await waitForLine((line) => line.event === 'ready', readyTimeoutMs);
  const addresses = ready.addresses as string[];
  const workers = ready.workers as { id: number; pid: number }[];
  return {
    process: child,
    masterPid: child.pid!,
    port: Number(addresses[0]?.split(':').pop()),
    pids: workers.map((worker) => worker.pid),
    lines,
    stderr,
    waitForLine,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Polls `condition` until it returns a truthy value, or throws after `timeoutMs`. */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 20, what = 'condition' } = {},
): Promise<Exclude<T, null | undefined | false>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as Exclude<T, null | undefined | false>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await tick(intervalMs);
  }
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP GET to 127.0.0.1:port (a new connection unless an agent is given). */
export function get(port: number, path = '/', { agent = false as http.Agent | false, timeoutMs = 10_000 } = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, agent, timeout: timeoutMs }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('request timed out')));
    request.on('error', reject);
  });
}

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// True while a process with this pid runs: unlike isAlive(), a zombie counts as gone (a worker
// orphaned by a killed master has exited and released its sockets before a pid 1 reaps it).
export { isRunning } from '../../src/system/process-state.js';

/** Kills the master with SIGKILL when a test ends, however it ends, unless it already exited. */
export function killOnTeardown(t: { teardown(fn: () => void): void }, child: ResultPromise): void {
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

/** Opens a TCP connection to 127.0.0.1:port and closes it: resolves `connected` or the error code. */
export function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'ERROR'));
  });
}
