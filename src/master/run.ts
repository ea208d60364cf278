// Runs a master in this process: the supervisor, its control plane and metrics, the signals
// an operator sends, and the process exit once the cluster has stopped.
import { MasterControl } from './control.js';
import { flushBeforeExit } from './exit-flush.js';
import { enforceMemoryLimit } from './memory-limit.js';
import { adoptActivatedSockets, warnUnusedSockets } from './activation.js';
import { Operations } from './operations.js';
import { reusePortMigration } from './balancers/shared.js';
import { controlExposure, metricsExposure, tokenWeakness } from './exposure.js';
import { LogFile, type LogFileOptions } from './log-file.js';
import { LogSink, type LogFormat } from './logs.js';
import { hasTerminal, releaseHungUpTerminal, stdioTerminals, terminalsUnblocked, watchOwnStdio, type StdioName } from './own-stdio.js';
import { noteNativeMissing } from './native-missing.js';
import { nativeHelper, nativeUnavailable } from '../system/native.js';
import { reapOrphans } from './orphans.js';
import { SystemdNotifier } from './sd-notify.js';
import { Supervisor } from './supervisor.js';
import type { ClusterConfig } from './cluster-config.js';
import type { OwnListener } from './listen-failure.js';
import { masterActions } from '../dashboard/actions.js';
import { DashboardFeed } from '../dashboard/feed.js';
import { exposureWarning, startDashboard } from '../dashboard/server.js';
import { startHealthServer } from '../control/health.js';
import { startMetricsServer } from '../control/metrics.js';
import { formatControlAddress, type ListenAddress, type TcpAddress } from '../control/options.js';
import { startControlServer } from '../control/server.js';
import { BootError, type ClusterdError } from '../errors.js';
import { formatAddress } from '../address.js';
import { usableCpus } from '../system/cpus.js';

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

/** What the master announces once every worker is ready (also sent to a daemon's parent). */
export interface ReadyInfo {
  name: string;
  addresses: string[];
  workers: { id: number; pid: number }[];
  masterPid: number;
  controlSocket: string;
  /** The TCP control listener (`--control`), with the port the system chose for port 0. */
  control: string | null;
  metrics: string | null;
  /** The --health listener, with the port the system chose for port 0. */
  health: string | null;
  /** The --dashboard's URL, with the port the system chose for port 0; `unix:/path` on a socket. */
  dashboard: string | null;
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

/** The signals that stop the cluster gracefully (a second one forces the stop); SIGHUP does too, from a terminal that hung up. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGUSR2'] as const;

/** Starts the master; rejects (before any worker is forked) when the control plane or metrics cannot start. */
export async function runMaster(options: MasterOptions, hooks: MasterHooks = {}): Promise<Supervisor> {
  const { maxMemory, controlTcp, metrics, health = null, dashboard = null, shutdownDelayMs = 0 } = options;
  // Whatever ends the master (its stop, an internal error), a terminal that hung up is let go of
  // before Node's own exit, which would crash on it (own-stdio.ts). Seen now: one that hung up is
  // a terminal no more.
  const terminals = stdioTerminals();
  process.once('exit', () => releaseHungUpTerminal(terminals));
  const logFile = options.logFile ? new LogFile(options.logFile) : null;
  const logSink = logFile
    ? new LogSink({ format: options.logFormat, output: { stdout: logFile, stderr: logFile }, timestamps: true })
    : new LogSink({ format: options.logFormat, output: terminalsUnblocked() });
  // Whether the master's own stdout or stderr failed: the sink's, or watched apart beside a log file.
  const stdioLost: (name: StdioName) => boolean = logFile ? watchOwnStdio(logSink, logFile.path) : (name) => logSink.lost(name);
  if (logFile) {
    logFile.onRecovered = (lines, error) =>
      logSink.event('log-file-recovered', `${lines} ${lines === 1 ? 'line' : 'lines'} not written to ${logFile.path} (${error}); it takes them again`, { path: logFile.path, lines, error }, 'warn');
    logFile.onGone = () =>
      logSink.event(
        'log-file-gone',
        `log file ${logFile.path} was removed or moved away (without SIGUSR1): opened anew as it was to rotate, the kept files left as they were (what was written in between is in the moved file, or went with the removed one)`,
        { path: logFile.path },
        'warn',
      );
    if (logFile.directoryOpen) logSink.event('log-file-exposed', logFile.directoryOpen, { path: logFile.path }, 'warn');
    if (logFile.stdioStays) {
      logSink.event(
        'log-stdio-stays',
        `the master's own stdout and stderr (a Node warning, a crash's stack) stay on the log file it started with: after a rotation or SIGUSR1 they are not in ${logFile.path} (${logFile.stdioStays})`,
        { path: logFile.path },
        'warn',
      );
    }
  }
  const cluster: ClusterConfig = { ...options.cluster, logs: logSink };
  const { logs, name } = cluster;
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
  // Waiting out --shutdown-delay: still serving, no longer ready for new traffic.
  let delaying: NodeJS.Timeout | null = null;
  // Going away, from the SIGTERM that starts the delay: /readyz says so, and no operation starts.
  const leaving = (): boolean => delaying !== null || supervisor.phase === 'stopping' || supervisor.phase === 'stopped';
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
  const control = await startControlServer({
    name,
    source: supervisor,
    operations: masterControl,
    dashboard: feed,
    tcp: controlTcp ?? undefined,
    onRefused: (source, { missing, wrong, throttled }, first) => {
      const why = [wrong > 0 ? `${wrong} with a wrong token` : '', missing > 0 ? `${missing} with none` : '', throttled > 0 ? `${throttled} unchecked after too many wrong tokens` : ''].filter(Boolean).join(', ');
      const text = first ? `control call from ${source} refused: ${wrong > 0 ? 'wrong token' : throttled > 0 ? 'too many wrong tokens' : 'no token'}` : `control calls from ${source} refused in the last minute: ${why}`;
      logs.event('control-refused', text, { source, missing, wrong, throttled }, 'warn');
    },
  }).catch((error: unknown) => {
    feed.close();
    throw error;
  });
  const metricsServer = metrics ? await startMetricsServer({ ...metrics, source: supervisor }).catch(async (error: unknown) => {
    feed.close();
    await control.close();
    throw error;
  }) : null;
  const healthServer = health
    ? await startHealthServer({
        ...health,
        readiness: () => {
          const workers = supervisor.workers();
          const ready = workers.filter((worker) => worker.state === 'ready');
          // A ready worker whose loop is blocked now (silent past the watchdog, or a second) serves
          // nothing: every worker blocked is a pod that cannot answer, and must leave the rotation.
          const workersBlocked = ready.filter((worker) => worker.blocked).length;
          const workersReady = ready.length - workersBlocked;
          const stopping = leaving();
          // Those asked for: an id waiting for its restart counts, as in status.
          return { ready: workersReady > 0 && !stopping, workersReady, workersBlocked, workers: Math.max(workers.length, supervisor.desired), stopping };
        },
      }).catch(async (error: unknown) => {
        feed.close();
        await Promise.allSettled([control.close(), metricsServer?.close()]);
        throw error;
      })
    : null;
  const dashboardServer = dashboard
    ? await startDashboard({ ...dashboard, name, source: feed, actions: masterActions(masterControl) }).catch(async (error: unknown) => {
        feed.close();
        await Promise.allSettled([control.close(), metricsServer?.close(), healthServer?.close()]);
        throw error;
      })
    : null;
  // What others may reach, and tokens short enough to guess: one warning each at start.
  const warn = (event: string, text: string | null, data: Record<string, unknown>): void => {
    if (text) logs.event(event, text, data, 'warn');
  };
  if (dashboardServer && dashboard) {
    warn('dashboard-exposed', exposureWarning(dashboardServer.address, dashboard.token), { url: dashboardServer.url });
    if (dashboard.token !== null && !('path' in dashboardServer.address)) warn('dashboard-token-short', tokenWeakness('dashboard', dashboard.token), { length: dashboard.token.length });
  }
  if (control.tcpAddress) warn('control-exposed', controlExposure(control.tcpAddress), { address: formatControlAddress(control.tcpAddress) });
  if (controlTcp) warn('control-token-short', tokenWeakness('control', controlTcp.token), { length: controlTcp.token.length });
  if (metricsServer) warn('metrics-exposed', metricsExposure(metricsServer.address), { address: formatControlAddress(metricsServer.address) });
  const metricsUrl = metricsServer ? `http://${formatAddress({ address: metricsServer.address.host, port: metricsServer.address.port })}/metrics` : null;

  if (maxMemory !== null) enforceMemoryLimit({ supervisor, limitBytes: maxMemory, logs, leaving });
  noteCpuQuota(cluster.instances, logs);
  const { watchdogMs, reportBlockedMs } = cluster;
  if (watchdogMs > 0 && reportBlockedMs > 0 && reportBlockedMs >= watchdogMs) {
    logs.event(
      'report-blocked-too-late',
      `--report-blocked ${reportBlockedMs} ms is not below --watchdog ${watchdogMs} ms: the watchdog replaces a blocked worker first, so blocks are counted only as it replaces them; give a shorter --report-blocked`,
      { watchdogMs, reportBlockedMs },
      'warn',
    );
  }
  if (cluster.balance === 'reuseport' && reusePortMigration() === 'off') {
    logs.event(
      'reuseport-resets',
      '--balance reuseport: net.ipv4.tcp_migrate_req is off, so connections waiting in a draining worker\'s queue are reset on reload, restart and scale down; `sysctl -w net.ipv4.tcp_migrate_req=1` (Linux >= 5.14) moves them to another worker. On a stop the sysctl cannot help: the last worker to close has no other to pass its queue to, and what waits there is reset',
      {},
      'warn',
    );
  }
  if (cluster.entry.typescriptCacheOff !== null) logs.event('ts-cache-off', cluster.entry.typescriptCacheOff, {}, 'warn');
  // Socket activation (systemd): the sockets it passed serve the app's matching listens.
  const activation = adoptActivatedSockets();
  if (activation) {
    const list = activation.sockets.map((socket) => `${socket.name} ${formatAddress(socket.sockname)} (fd ${socket.fd})`).join(', ') || 'none';
    logs.event('socket-activation', `sockets from systemd: ${list}${activation.skipped.length ? `; skipped: ${activation.skipped.join('; ')}` : ''}`, {
      sockets: activation.sockets.map((socket) => ({ fd: socket.fd, name: socket.name, address: formatAddress(socket.sockname) })),
      skipped: activation.skipped,
    }, activation.skipped.length ? 'warn' : 'info');
  }
  // Without the native helper, said once (as PID 1 too: no orphan reaping either).
  if (!nativeHelper()) noteNativeMissing({ why: nativeUnavailable() ?? '', logs });
  // As PID 1 (a container without an init), orphans reparented to the master are its to reap.
  const orphans = reapOrphans({ own: () => supervisor.ownPids() });

  supervisor.once('ready', () => {
    const workers = supervisor.workers().map((worker) => ({ id: worker.id, pid: worker.pid }));
    const info: ReadyInfo = {
      name,
      addresses: supervisor.addresses().map(formatAddress),
      workers,
      masterPid: process.pid,
      controlSocket: control.socketPath,
      control: control.tcpAddress ? formatControlAddress(control.tcpAddress) : null,
      metrics: metricsUrl,
      health: healthServer ? formatControlAddress(healthServer.address) : null,
      dashboard: dashboardServer?.url ?? null,
    };
    stopWarnings();
    logs.event('ready', `${name} ready on ${info.addresses.join(', ') || '(no ports)'} with ${workerCount(info)}${endpointsText(info)}`, { ...info });
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
    void Promise.allSettled([control.close(), metricsServer?.close(), healthServer?.close(), dashboardServer?.close()])
      .then(() => exitOnceFlushed({ logs, lost: stdioLost, sinkOnStdio: logFile === null }, code));
  });

  // Signal handlers only enqueue: the requests run in order, each from the event loop after the
  // handler has returned (gunicorn's rule), so a burst of signals never interleaves with itself.
  // Operations that are refused (one already running) are logged, not fatal.
  const requests: Array<() => void> = [];
  const enqueue = (request: () => void): void => {
    requests.push(request);
    if (requests.length === 1) setImmediate(drainRequests);
  };
  const drainRequests = (): void => {
    for (const request of requests.splice(0)) request();
  };
  // An operation a signal asks for is logged as the control plane's are (MasterControl): asked by
  // the signal, then done or failed; its failure is in the log, and nobody else waits for it.
  const operate = (run: () => Promise<unknown>): void => {
    if (supervisor.phase !== 'running' || leaving()) return;
    run().catch(() => {});
  };
  // Any stop ends the delay: `clusterd stop`, start()'s stop() (which asks the same), a fatal error. Left
  // to run, the timer asked to stop again when it fired, and a second stop forces: every worker was
  // killed mid-request (exit 6) although nobody had asked for more than a graceful stop.
  supervisor.once('stopping', () => {
    if (!delaying) return;
    clearTimeout(delaying);
    delaying = null;
    logs.event('shutdown-delay', 'stop asked during --shutdown-delay: draining now', { shutdownDelayMs });
  });
  // SIGTERM is how an orchestrator says "you are being removed": give its load balancers the
  // delay to stop sending before the drain starts, and so for SIGQUIT, the stop signal of images
  // made for nginx (`STOPSIGNAL SIGQUIT`), which Docker and Kubernetes send in its place. Ctrl-C
  // (SIGINT) and nodemon's restart (SIGUSR2) are a person at work: no delay.
  const delayThenStop = (event: string, text: string, fields: Record<string, unknown>): boolean => {
    if (shutdownDelayMs <= 0 || supervisor.phase !== 'running') return false;
    logs.event(event, `${text}: not ready any more (/readyz 503); serving on for ${shutdownDelayMs} ms (--shutdown-delay), then stopping gracefully (again to stop now)`, { ...fields, shutdownDelayMs });
    // systemd hears it now, as the probes do: the unit is stopping, whatever serves until the drain.
    notifier?.stopping();
    delaying = setTimeout(() => {
      delaying = null;
      logs.event('shutdown-delay', `--shutdown-delay over: stopping gracefully`, { shutdownDelayMs });
      supervisor.stop();
    }, shutdownDelayMs);
    return true;
  };
  // The caller's going started the stop: the signal the master often had too (its group's Ctrl-C or
  // SIGTERM) can come after the channel closed, and is no second request either.
  let stoppedForCaller = false;
  const onStopSignal = (signal: NodeJS.Signals): void =>
    enqueue(() => {
      if (stoppedForCaller) {
        stoppedForCaller = false;
        if (delaying || supervisor.phase === 'stopping') {
          logs.event('signal', `${signal}: already stopping, the process that called start() being gone (again to force)`, { signal });
          return;
        }
      }
      if (delaying) {
        // Again during the delay: drain now.
        clearTimeout(delaying);
        delaying = null;
        logs.event('signal', `${signal} again: draining now, before the end of --shutdown-delay (again to force)`, { signal });
        supervisor.stop();
        return;
      }
      const forcing = supervisor.phase === 'stopping';
      if (!forcing && (signal === 'SIGTERM' || signal === 'SIGQUIT') && delayThenStop('signal', signal, { signal })) return;
      logs.event('signal', forcing ? `${signal} again: killing workers` : `${signal}: stopping gracefully (again to force)`, { signal });
      supervisor.stop();
    });
  // SIGQUIT (nginx's graceful stop, and so many images' STOPSIGNAL) and SIGUSR2 (how nodemon
  // restarts a process: it sends it, then waits for the exit) kill a Node process that does not
  // listen, cluster and requests in flight with it; as PID 1 in a container, the kernel does not
  // deliver a signal nobody listens for, and the stop waited for SIGKILL. Both stop gracefully.
  for (const signal of STOP_SIGNALS) process.on(signal, onStopSignal);
  // start()'s caller gone: a first SIGTERM's stop, or nothing when one is under way. Its going is no
  // second request: a caller exits after its own Ctrl-C or SIGTERM, which the master often had too
  // (the terminal signals the whole process group), and an exit must not kill requests in flight.
  const onCallerGone = (): void =>
    enqueue(() => {
      if (delaying || supervisor.phase === 'stopping' || supervisor.phase === 'stopped') return;
      const text = 'the process that called start() is gone';
      stoppedForCaller = true;
      if (delayThenStop('caller-gone', text, {})) return;
      logs.event('caller-gone', `${text}: stopping gracefully`, {});
      supervisor.stop();
    });
  if (hooks.callerGone?.aborted) onCallerGone();
  else hooks.callerGone?.addEventListener('abort', onCallerGone, { once: true });
  // SIGHUP is a reload (nginx's, gunicorn's), except from a terminal that hung up (the SSH session
  // closed, the window shut): the operator left, and a server run in the foreground goes with them,
  // as `node app.js` would, rather than reload and serve on with nowhere to log.
  const hadTerminal = hasTerminal();
  process.on('SIGHUP', () => {
    if (hadTerminal && !hasTerminal()) return onStopSignal('SIGHUP');
    enqueue(() => operate(() => masterControl.reload({ parallel: 1 }, ({ id, message, ...progress }) => logs.event('reload', message, { worker: id, ...progress }), 'SIGHUP')));
  });
  // logrotate's convention: after it moved the file away, SIGUSR1 says "open it again". Without a
  // log file it is heard all the same: unheard, Node would open an inspector on 127.0.0.1:9229, where
  // any local user may run code as the master (and any app of its workers can send the signal).
  process.on('SIGUSR1', () => {
    if (!logFile) {
      logs.event('signal-ignored', 'SIGUSR1 ignored: it reopens --log-file, and there is none (the master opens no inspector)', { signal: 'SIGUSR1' }, 'warn');
      return;
    }
    try {
      logFile.reopen();
      logs.event('log-reopened', `log file ${logFile.path} reopened (SIGUSR1)`, { path: logFile.path });
    } catch (error) {
      logs.event('log-reopen-failed', `cannot reopen ${logFile.path}: ${(error as Error).message}; lines go to the old file`, { path: logFile.path }, 'error');
    }
  });
  process.on('SIGTTIN', () => enqueue(() => operate(() => masterControl.scale('+1', 'SIGTTIN'))));
  process.on('SIGTTOU', () => enqueue(() => operate(() => masterControl.scale('-1', 'SIGTTOU'))));

  const ownListeners: OwnListener[] = [
    ...(control.tcpAddress ? [{ flag: '--control', ...control.tcpAddress }] : []),
    ...(metricsServer ? [{ flag: '--metrics', ...metricsServer.address }] : []),
    ...(healthServer ? [{ flag: '--health', ...healthServer.address }] : []),
    ...(dashboardServer ? [{ flag: '--dashboard', ...dashboardServer.address }] : []),
  ];
  supervisor.start({ ownListeners });
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

/**
 * A cgroup CPU quota below the CPUs the process may run on (a container's CPU limit) is said once:
 * `-i max` follows it, and more workers than it allows share its time, throttled.
 */
function noteCpuQuota(instances: number, logs: LogSink): void {
  const { quota, available } = usableCpus();
  if (quota === null || quota >= available) return;
  const over = instances > quota;
  logs.event(
    'cpu-quota',
    `this cgroup's CPU quota is ${quota} of the ${available} CPUs (-i max means ${quota})${over ? `: ${instances} workers share it, throttled` : ''}`,
    { quota, available, instances },
    over ? 'warn' : 'info',
  );
}
