// Runs a master in this process: the supervisor, its control plane and metrics, the signals
// an operator sends, and the process exit once the cluster has stopped.
import { MasterControl } from './control.js';
import { flushBeforeExit } from './exit-flush.js';
import { enforceMemoryLimit } from './memory-limit.js';
import { warnUnusedSockets } from './activation.js';
import { Operations } from './operations.js';
import type { LogFileOptions } from './log-file.js';
import { openLogOutput } from './log-output.js';
import type { LogFormat, LogSink } from './logs.js';
import { releaseHungUpTerminal, stdioTerminals, type StdioName } from './own-stdio.js';
import { startOwnServers } from './own-servers.js';
import { reapOrphans } from './orphans.js';
import { SystemdNotifier } from './sd-notify.js';
import { MasterSignals } from './signals.js';
import { noteStartConditions } from './start-notes.js';
import { Supervisor } from './supervisor.js';
import { blockedMs } from './status.js';
import type { ClusterConfig } from './cluster-config.js';
import { DashboardFeed } from '../dashboard/feed.js';
import { formatControlAddress, type ListenAddress, type TcpAddress } from '../control/options.js';
import { countReady } from '../control/worker-rows.js';
import { BootError, type ClusterdError } from '../errors.js';
import { formatAddress } from '../address.js';

export interface MasterOptions {
  /** The cluster, less its log sink: runMaster makes that, on stdout and stderr or on --log-file. */
  cluster: Omit<ClusterConfig, 'logs'>;
  logFormat: LogFormat;
  /** --max-memory in bytes, or null. */
  maxMemory: number | null;
  /** --control: also serve the control plane on TCP, with a token. */
  controlTcp: (TcpAddress & { token: string }) | null;
  /** --metrics: serve Prometheus text on HOST:PORT/metrics. */
  metrics: TcpAddress | null;
  /** --health: serve /livez and /readyz on HOST:PORT. */
  health?: TcpAddress | null;
  /** --dashboard: the live page on HOST:PORT or a unix socket; on TCP `token` (--dashboard-token) allows its actions. */
  dashboard?: { listen: ListenAddress; token: string | null } | null;
  /** --shutdown-delay: on SIGTERM (or SIGQUIT), /readyz says 503 at once and the drain starts this much later (ms). */
  shutdownDelayMs?: number;
  /** --log-file (and the daemon's log): lines go there, timestamped, instead of to stdout and stderr. */
  logFile?: LogFileOptions | null;
}

// Each listener in the form its users take it, which is why the forms differ: `--control` and
// connect()'s `control` take HOST:PORT (gRPC's form), a Prometheus scrape config a URL. The ports
// are the ones the system chose for port 0. Users read these forms: they are kept as they are.
/** What the master announces once every worker is ready (also sent to a daemon's parent). */
export interface ReadyInfo {
  name: string;
  /** Where the app listens: `HOST:PORT` (an IPv6 host in brackets: `[::1]:3000`), or a unix socket's path (`@name` for an abstract one). */
  addresses: string[];
  /** Those of `addresses` a worker binds alone (`listen({ exclusive: true })`), with its id: the ready line marks them. */
  exclusive: { address: string; worker: number }[];
  workers: { id: number; pid: number }[];
  masterPid: number;
  /** The local control socket's path. */
  controlSocket: string;
  /** The TCP control listener (`--control`), as `HOST:PORT` without a scheme (`127.0.0.1:7070`): what connect()'s `control` takes. */
  control: string | null;
  /** The --metrics endpoint as a full URL, path included: `http://127.0.0.1:9100/metrics`. */
  metrics: string | null;
  /** The --health listener as `HOST:PORT` without a scheme (`127.0.0.1:8081`); it serves /livez and /readyz. */
  health: string | null;
  /** The --dashboard's page as a URL (`http://127.0.0.1:8080/`); `unix:/path` on a unix socket. */
  dashboard: string | null;
}

/** `127.0.0.1:3000, 127.0.0.1:3001 (exclusive: worker 1's own)`, or `(no ports)`: the ready line's, and `start -d`'s. */
export function addressesText({ addresses, exclusive }: Pick<ReadyInfo, 'addresses' | 'exclusive'>): string {
  const own = new Map(exclusive.map(({ address, worker }) => [address, worker]));
  const listed = addresses.map((address) => (own.has(address) ? `${address} (exclusive: worker ${own.get(address)}'s own)` : address));
  return listed.join(', ') || '(no ports)';
}

/** `2 workers (pids 41, 42)`; `1 worker (pid 41)`. */
export function workerCount({ workers }: Pick<ReadyInfo, 'workers'>): string {
  const one = workers.length === 1;
  return `${workers.length} worker${one ? '' : 's'} (pid${one ? '' : 's'} ${workers.map((worker) => worker.pid).join(', ')})`;
}

/**
 * `; control on 127.0.0.1:7070; metrics on http://...`: the master's own listeners, where the ready
 * line is the only place a port the system picked (port 0) can be read, in text as in JSON.
 */
export function endpointsText({ control, metrics, health, dashboard }: Pick<ReadyInfo, 'control' | 'metrics' | 'health' | 'dashboard'>): string {
  const parts = [
    ['control', control],
    ['metrics', metrics],
    ['health', health],
    ['dashboard', dashboard],
  ].filter((part): part is [string, string] => part[1] !== null);
  return parts.map(([what, where]) => `; ${what} on ${where}`).join('');
}

export interface MasterHooks {
  onReady?(info: ReadyInfo): void;
  /**
   * Each warning or error the master logs before it is ready or fails (`--balance reuseport` without
   * tcp_migrate_req, -i past the CPU quota): `start -d` says them, where the log file alone had them.
   */
  onWarning?(message: string): void;
  onFatal?(error: ClusterdError): void;
  /**
   * Aborted once the process that started this master is gone (start()'s caller): the cluster stops
   * gracefully, as on a first SIGTERM, and this never counts as a second request that forces the stop.
   */
  callerGone?: AbortSignal;
}

/** Starts the master; rejects (before any worker is forked) when the control plane or metrics cannot start. */
export async function runMaster(options: MasterOptions, hooks: MasterHooks = {}): Promise<Supervisor> {
  const { maxMemory, controlTcp, metrics, health = null, dashboard = null, shutdownDelayMs = 0 } = options;
  // Whatever ends the master (its stop, an internal error), a terminal that hung up is let go of
  // before Node's own exit, which would crash on it (own-stdio.ts). Seen now: one that hung up is
  // a terminal no more.
  const terminals = stdioTerminals();
  process.once('exit', () => releaseHungUpTerminal(terminals));
  const { logs, logFile, stdioLost } = openLogOutput({ format: options.logFormat, file: options.logFile ?? null });
  const cluster: ClusterConfig = { ...options.cluster, logs };
  const { name } = cluster;
  const onWarning = hooks.onWarning;
  const stopWarnings = onWarning ? logs.onEvent(({ level, message }) => level !== 'info' && onWarning(message)) : () => {};
  const supervisor = new Supervisor(cluster);
  // Type=notify under systemd (NOTIFY_SOCKET): ready, reloading, stopping, status, watchdog.
  const notifier = SystemdNotifier.fromEnv({ logs });
  const statusLine = (): string => {
    const workers = supervisor.workers();
    // Out of the count asked for: an id waiting to be restarted is missing.
    return `${workers.filter((worker) => worker.state === 'ready').length}/${Math.max(workers.length, supervisor.desired)} workers ready, generation ${supervisor.generation}`;
  };
  const signals = new MasterSignals({ supervisor, logs, shutdownDelayMs, notifier });
  const leaving = (): boolean => signals.leaving();
  const operations = new Operations(supervisor, {
    onReload: (phase) => (phase === 'start' ? notifier?.reloading() : notifier?.ready(statusLine())),
    stopping: leaving,
  });
  if (notifier) {
    supervisor.on('change', () => {
      if (supervisor.phase === 'running' && !operations.busy) notifier.status(statusLine());
    });
    supervisor.once('stopping', () => notifier.stopping());
  }
  const masterControl = new MasterControl({ supervisor, operations, logs });
  // Kept whether or not --dashboard is given, so `clusterd dashboard` shows the last 15 minutes at
  // once. Bounded (history.ts): ~105 KiB per worker id over a full window plus 100-150 KiB of markers,
  // 1.8 MiB for 16 workers (npm run bench:dashboard-memory); a sample costs one bucket update; no
  // timer runs without a reader.
  const feed = new DashboardFeed({ supervisor, logs });
  const servers = await startOwnServers({
    name,
    supervisor,
    control: masterControl,
    feed,
    logs,
    controlTcp,
    metrics,
    health,
    dashboard,
    readiness: () => {
      const workers = supervisor.workers();
      // A ready worker whose loop is blocked now (silent past the watchdog, or a second) serves
      // nothing: every worker blocked is a pod that cannot answer, and must leave the rotation.
      const { ready: workersReady, blocked: workersBlocked } = countReady(workers.map((worker) => ({ state: worker.state, blockedMs: blockedMs(worker) })));
      const stopping = leaving();
      // Those asked for: an id waiting for its restart counts, as in status.
      return { ready: workersReady > 0 && !stopping, workersReady, workersBlocked, workers: Math.max(workers.length, supervisor.desired), stopping };
    },
  }).catch((error: unknown) => {
    feed.close();
    throw error;
  });

  if (maxMemory !== null) enforceMemoryLimit({ supervisor, limitBytes: maxMemory, logs, leaving });
  noteStartConditions(cluster);
  // As PID 1 (a container without an init), orphans reparented to the master are its to reap.
  const orphans = reapOrphans({ own: () => supervisor.ownPids() });

  supervisor.once('ready', () => {
    const workers = supervisor.workers().map((worker) => ({ id: worker.id, pid: worker.pid }));
    const addresses = supervisor.addresses();
    const info: ReadyInfo = {
      name,
      addresses: addresses.map(formatAddress),
      exclusive: addresses.flatMap((address) => ('worker' in address ? [{ address: formatAddress(address), worker: address.worker }] : [])),
      workers,
      masterPid: process.pid,
      controlSocket: servers.control.socketPath,
      control: servers.control.tcpAddress ? formatControlAddress(servers.control.tcpAddress) : null,
      metrics: servers.metricsUrl,
      health: servers.health ? formatControlAddress(servers.health.address) : null,
      dashboard: servers.dashboard?.url ?? null,
    };
    stopWarnings();
    // An address a worker binds by itself (exclusive: true) is marked in the line, not in `addresses` (HOST:PORT, where clients connect).
    logs.event('ready', `${name} ready on ${addressesText(info)} with ${workerCount(info)}${endpointsText(info)}`, { ...info });
    warnUnusedSockets(logs, info.addresses);
    hooks.onReady?.(info);
    notifier?.ready(statusLine());
  });
  supervisor.on('fatal', (error: ClusterdError) => {
    const lastOutput = error instanceof BootError ? error.lastOutput : [];
    stopWarnings();
    logs.event('fatal', `error: ${error.message}`, { code: error.code, lastOutput }, 'error');
    hooks.onFatal?.(error);
  });
  supervisor.once('stopped', (code: number) => {
    process.exitCode = code;
    orphans?.stop();
    notifier?.stopWatchdog();
    feed.close();
    logs.event('stopped', `${name} stopped`, { exitCode: code });
    void servers.close().then(() => exitOnceFlushed({ logs, lost: stdioLost, sinkOnStdio: logFile === null }, code));
  });
  signals.listen({ control: masterControl, logFile, callerGone: hooks.callerGone });
  supervisor.start({ ownListeners: servers.listeners });
  return supervisor;
}

/**
 * Exits once the master's stdout and stderr took what is queued for them, or their readers stopped
 * reading (exit-flush.ts); what such a reader missed is said on the other stream. With a log file
 * the sink's lines are not on those streams, and there is nothing of its to say.
 */
async function exitOnceFlushed({ logs, lost, sinkOnStdio }: { logs: LogSink; lost: (name: StdioName) => boolean; sinkOnStdio: boolean }, code: number): Promise<never> {
  const streams: Partial<Record<StdioName, NodeJS.WriteStream>> = {};
  for (const name of ['stdout', 'stderr'] as const) if (!lost(name)) streams[name] = process[name];
  const left = await flushBeforeExit(streams);
  if (sinkOnStdio) for (const [name, bytes] of left) logs.unwrittenAtExit(name, bytes);
  return process.exit(code);
}
