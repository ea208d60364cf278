// clusterd's programmatic API: `import { start, connect } from 'clusterd'`.
//
// start(options) runs a master as a child process (`clusterd start`, with the options written to a
// private config file), not inside the caller's process: the master owns its signals (SIGTERM,
// SIGINT, SIGHUP), exits when its cluster stops and must outlive nothing it does not own, none of
// which a host process should hand over. Its handle is the same as connect()'s, over the control
// plane; start()'s master also stops, gracefully, when the calling process exits.
//
// Both handles emit, from the control plane's status stream:
//   'ready'        every worker is ready, and they are not the processes of the last 'ready' (after a
//                  reload, a restart, a replacement, a scale; for the handle's own reload(), restart()
//                  and scale(), before their promise resolves)
//   'worker-exit'  a worker's process went (id, pid); its replacement follows
//   'blocked'      a worker's loop was caught blocked (id, pid, blockedMs, frames)
//   'sample'       a worker's new loop sample (id, pid, sample)
//   'stopped'      the cluster stopped (asked by anyone, this handle's stop() too); the handle is closed
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_KEYS, parseConfig, withAbsolutePaths } from './cli/config-file.js';
import { checkKeys } from './cli/known-keys.js';
import { API_CHILD, API_CONFIG_ENV, DAEMON_ENV } from './cli/daemon.js';
import { parseDaemonReport } from './cli/daemon-parent.js';
import { masterEnvironment } from './system/node-options.js';
import { masterOptions, startSettings } from './cli/start.js';
import { checkLogFile } from './master/log-file.js';
import { parseScaleSpec } from './cli/control-args.js';
import { askToStop } from './cli/stop.js';
import { statusJson, type StatusJson } from './cli/views.js';
import { ControlClient, NOT_RUNNING, type Subscription } from './control/client.js';
import { connect as connectControl } from './control/discovery.js';
import { isTokenText, parseControlAddress, type TcpAddress } from './control/options.js';
import type { ClusterView, StackView, WorkerView } from './control/types.js';
import { ClusterdError, UsageError, isErrorCode } from './errors.js';
import { MAX_INSTANCES } from './options.js';
import { dropSystemdEnv } from './system/systemd-env.js';
import { ExitCode } from './exit-codes.js';
import type { LoopSample } from './loop/types.js';
import type { ReadyInfo } from './master/run.js';

export { ClusterdError, UsageError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { ExitCode } from './exit-codes.js';
export type { StatusJson, WorkerJson } from './cli/views.js';
export type { StackView } from './control/types.js';
export type { LoopSample } from './loop/types.js';

/**
 * The options of start(): the keys of the config file (README, "Config file"), the long flags in
 * camelCase. Durations and sizes as on the command line (`'30s'`, `'512M'`), or numbers (seconds, bytes).
 */
export interface StartOptions {
  entry: string;
  name?: string;
  /** A count, as a number or its text (as the config file takes it), or `'max'`. */
  instances?: number | `${number}` | 'max';
  balance?: 'fair' | 'rr' | 'least' | 'sticky' | 'shared' | 'reuseport';
  waitReady?: boolean;
  listenTimeout?: string | number;
  grace?: string | number;
  /** Not SIGKILL or SIGSTOP (they cannot be handled), nor SIGUSR1 (Node's inspector: stack and profile use it). */
  killSignal?: Exclude<NodeJS.Signals, 'SIGKILL' | 'SIGSTOP' | 'SIGUSR1'>;
  maxBootFailures?: number;
  statsInterval?: string | number;
  watchdog?: string | number;
  reportBlocked?: string | number;
  maxMemory?: string | number;
  logFormat?: 'text' | 'json';
  /** Relative paths here (logFile, controlTokenFile, dashboardTokenFile, a dashboard socket) are from `cwd`. */
  logFile?: string;
  logMaxSize?: string | number;
  logKeep?: number;
  metrics?: string;
  health?: string;
  dashboard?: string;
  dashboardToken?: string;
  dashboardTokenFile?: string;
  shutdownDelay?: string | number;
  control?: string;
  controlToken?: string;
  controlTokenFile?: string;
  nodeArg?: string[];
  env?: Record<string, string | number | boolean>;
  args?: string[];
  /** Where a relative entry is found; default process.cwd(). */
  cwd?: string;
  /** The master's and workers' output: this process's stdout and stderr (default), or nowhere. */
  output?: 'inherit' | 'ignore';
}

export interface ConnectTarget {
  /** The cluster's name (may be left out when exactly one runs in this user's runtime directory). */
  name?: string;
  /** A remote cluster's control plane: HOST:PORT of its `--control`, with its token. */
  control?: string;
  token?: string;
}

export interface WorkerExitEvent {
  id: number;
  pid: number;
}

/**
 * A worker's loop caught blocked: by --report-blocked (the worker serves on; `site` is where, and
 * `blockedMs` the longest block seen there) or by the watchdog (the worker is replaced; `frames` is
 * its whole stack, innermost first, and `blockedMs` that block's length).
 */
export interface BlockedEvent {
  id: number;
  pid: number;
  /** Epoch ms. */
  time: number;
  blockedMs: number;
  site: { function: string; url: string; line: number } | null;
  frames: StackView['frames'];
  replaced: boolean;
}

export interface SampleEvent {
  id: number;
  pid: number;
  sample: LoopSample;
}

export interface ClusterEvents {
  ready: [StatusJson];
  'worker-exit': [WorkerExitEvent];
  blocked: [BlockedEvent];
  sample: [SampleEvent];
  /** The cluster stopped (a stop asked by anyone: `clusterd stop`, a signal, another handle, this one's stop()); the handle is closed. */
  stopped: [];
  /** The status stream failed (the master went away without stopping cleanly); the handle is closed. */
  error: [Error];
}

/** A running cluster: one started by start(), or found by connect(). */
export class Cluster extends EventEmitter<ClusterEvents> {
  readonly name: string;
  readonly masterPid: number;
  /** Where a cluster this process started listens: the app's addresses, and its TCP control plane, metrics, health and dashboard (null when not asked for); null for a connected cluster. */
  readonly endpoints: Pick<ReadyInfo, 'addresses' | 'control' | 'metrics' | 'health' | 'dashboard'> | null;
  readonly #client: ControlClient;
  readonly #master: ChildProcess | null;
  #watch: Subscription | null = null;
  #last: ClusterView;
  /** The worker pids at the last 'ready' (or when the handle was made). */
  #readyPids: string;
  #closed = false;
  /** Why the status stream ended, when the master went away rather than close() ending it. */
  #lost: Error | null = null;
  /** The master ended the status stream: its cluster stopped, close() had not been called. */
  #stopped = false;
  /** This handle's stop() was answered: the cluster is stopping as it asked. */
  #stopAsked = false;

  /** @internal Use start() or connect(). */
  constructor(client: ControlClient, status: ClusterView, started: { master: ChildProcess; info: ReadyInfo } | null = null) {
    super();
    const master = started?.master ?? null;
    const info = started?.info;
    this.endpoints = info ? { addresses: [...info.addresses], control: info.control, metrics: info.metrics, health: info.health, dashboard: info.dashboard } : null;
    this.#client = client;
    this.#last = status;
    this.#master = master;
    this.name = status.name;
    this.masterPid = status.masterPid;
    this.#readyPids = status.workers.map((worker) => worker.pid).sort((a, b) => a - b).join(',');
    this.#watch = client.watch(
      { history: false },
      {
        onStatus: (next) => this.#deliver(this.#changed(next)),
        onEnd: (error) => {
          this.#watch = null;
          const closed = this.#closed;
          // Once this handle's stop() was answered, the stream's end is the cluster stopping as asked,
          // even where the master's going cut it off rather than ending it.
          const asked = this.#stopAsked;
          if (error && !closed && !asked) this.#lost = error;
          this.#stopped = !closed && (!error || asked);
          this.close();
          if (error && !closed && this.listenerCount('error') > 0) this.#deliver([['error', error]]);
          if (this.#stopped) this.#deliver([['stopped']]);
        },
      },
    );
  }

  /** The cluster now, as `clusterd status --json` prints it. */
  async status(): Promise<StatusJson> {
    this.#usable();
    return statusJson(await this.#client.status());
  }

  /** A rolling reload (`parallel` workers at a time); resolves once every worker is replaced. */
  async reload(options: { parallel?: number } = {}): Promise<{ replaced: number }> {
    if (typeof options !== 'object' || options === null) throw new UsageError(`reload(): expected { parallel } or nothing, got ${options === null ? 'null' : typeof options}`);
    checkKeys('reload()', options, ['parallel']);
    const { parallel = 1 } = options;
    this.#usable();
    const done = await this.#client.reload({ parallel: whole('reload(): `parallel`', parallel, MAX_INSTANCES) }, () => {});
    await this.#catchUp();
    return { replaced: done.replaced };
  }

  /** Replaces worker `id` (drained, new one first); resolves with the new worker's pid. */
  async restart(id: number): Promise<{ pid: number }> {
    this.#usable();
    const { pid } = await this.#client.restart(whole('restart(): the worker id', id, MAX_INSTANCES), () => {});
    await this.#catchUp();
    return { pid };
  }

  /** `4`, `'+2'` or `'-1'` workers; resolves with the new count once they are all ready and those taken away have exited. */
  async scale(workers: number | string): Promise<number> {
    // A step up or down is a string only: a number is the count, and `scale(1 - 2)` must not
    // read as '-1' and take a worker away.
    const spec = typeof workers === 'string' ? scaleSpec(workers) : String(whole('scale(): the worker count', workers, MAX_INSTANCES));
    this.#usable();
    const count = await this.#client.scale(spec);
    await this.#catchUp();
    return count;
  }

  /**
   * After this handle's own operation: the cluster as it is now, taken through #changed, so that its
   * 'ready' comes before the operation's promise resolves. The status stream alone sends at most
   * every 250 ms: after `await reload(); await scale('+1'); await stop()` in a row, the stop came
   * before the stream's next message, and no 'ready' was emitted at all. A failure here is the
   * stream's to report: the operation itself was done.
   */
  async #catchUp(): Promise<void> {
    try {
      const now = await this.#client.status();
      if (!this.#closed) this.#deliver(this.#changed(now));
    } catch {
      // The master went away just after answering: the stream's end says so.
    }
  }

  /** Worker `id`'s JavaScript stack now. */
  async stack(id: number): Promise<StackView> {
    this.#usable();
    return this.#client.stack(whole('stack(): the worker id', id, MAX_INSTANCES));
  }

  /**
   * Stops the cluster gracefully and resolves once its master has exited, with its exit code when this
   * process started it (null otherwise).
   */
  async stop(): Promise<{ exitCode: number | null }> {
    const master = this.#master;
    const exited = master ? exitOf(master) : null;
    // Its master gone or going already (killed, crashed, stopped by another's request; its exit may
    // not be seen yet when the stream ended): there is nothing to ask, only how it ended.
    if (exited && (this.#lost !== null || this.#stopped || master!.exitCode !== null || master!.signalCode !== null)) {
      this.close();
      master!.ref();
      return { exitCode: await exited };
    }
    this.#usable();
    // Asked as `clusterd stop` asks: a quick stop's reply can be lost as the master closes its
    // control plane (null: it no longer answers), seen under load as "Connection dropped".
    let asked: Awaited<ReturnType<typeof askToStop>>;
    try {
      asked = await askToStop(this.#client);
    } catch (error) {
      // Its master died as it was asked (SIGKILL just before): the handle saw it go and closed its
      // client under the second try, which threw grpc's bare "Channel has been shut down".
      if (!exited || !(this.#lost !== null || master!.exitCode !== null || master!.signalCode !== null)) throw error;
      this.close();
      master!.ref();
      return { exitCode: await exited };
    }
    this.#stopAsked = true;
    if (exited) {
      // Its exit is waited for (start() unref'd the child): the status stream, left open for its
      // end, may close before the master has exited.
      master!.ref();
      const exitCode = await exited;
      this.#stoppedAsAsked();
      return { exitCode };
    }
    // Another process's master: gone once its socket stops answering (its grace, plus a margin).
    const graceMs = asked?.graceMs ?? 0;
    const deadline = Date.now() + graceMs + 15_000;
    const probe = new ControlClient(this.#client.target);
    try {
      while (Date.now() < deadline) {
        try {
          await probe.status({ timeoutMs: 1000 });
        } catch (error) {
          if (!(error instanceof ClusterdError && error.code === NOT_RUNNING)) throw error;
          this.#stoppedAsAsked();
          return { exitCode: null };
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      probe.close();
      this.close();
    }
    throw new ClusterdError('ERR_CLUSTERD_STOP_TIMEOUT', `cluster ${this.name} (master ${this.masterPid}) still answers ${graceMs + 15_000} ms after it was asked to stop`);
  }

  /**
   * The cluster this handle's stop() asked to stop has stopped: 'stopped', once, unless the status
   * stream's end said so already (or said that the master went away). The handle is closed.
   */
  #stoppedAsAsked(): void {
    const emit = !this.#stopped && this.#lost === null;
    this.#stopped = true;
    this.close();
    if (emit) this.#deliver([['stopped']]);
  }

  /** Throws ERR_CLUSTERD_NOT_RUNNING once the handle cannot reach its master: closed, stopped, or its master gone. */
  #usable(): void {
    if (!this.#closed) return;
    const master = this.#master;
    const why =
      master && (master.exitCode !== null || master.signalCode !== null)
        ? `its master (pid ${this.masterPid}) has exited (${master.signalCode ?? `code ${master.exitCode}`})`
        : this.#lost
          ? `its master (pid ${this.masterPid}) went away: ${this.#lost.message}`
          : this.#stopped
            ? `it has stopped (master pid ${this.masterPid})`
            : 'this handle is closed (close() or stop() was called)';
    throw new ClusterdError(NOT_RUNNING, `cluster ${this.name}: ${why}`);
  }

  /**
   * Stops following the cluster; it keeps running. The handle no longer holds this process alive: a
   * master started by start() runs on as long as this process does, and stops gracefully when it exits.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch?.cancel();
    this.#watch = null;
    this.#client.close();
  }

  /**
   * Emits `events` in order. These calls come from grpc-js's stream handlers: a listener's throw
   * escaping into them stopped the stream being read, and the handle went silent. A throw is
   * rethrown on its own tick instead (uncaught, as an EventEmitter's in a callback), and the
   * events after it are still emitted.
   */
  #deliver(events: ClusterEvent[]): void {
    for (const [name, ...args] of events) {
      try {
        (this.emit as (name: string, ...args: unknown[]) => boolean)(name, ...args);
      } catch (error) {
        process.nextTick(() => {
          throw error;
        });
      }
    }
  }

  /** Takes `next` as the cluster now, and returns the events that its change from the last one makes. */
  #changed(next: ClusterView): ClusterEvent[] {
    const events: ClusterEvent[] = [];
    // Built before the last one taken (a stream message that crossed #catchUp's answer): already
    // told, and taken as newer it would undo what was seen (a new worker's exit).
    if (next.uptimeMs < this.#last.uptimeMs) return events;
    const before = new Map(this.#last.workers.map((worker) => [worker.id, worker]));
    const now = new Map(next.workers.map((worker) => [worker.id, worker]));
    for (const [id, old] of before) {
      const current = now.get(id);
      if (old.pid > 0 && (!current || current.pid !== old.pid)) events.push(['worker-exit', { id, pid: old.pid }]);
    }
    for (const worker of next.workers) {
      const old = before.get(worker.id);
      const samePid = old?.pid === worker.pid;
      if (worker.sample && !(samePid && old?.sample && old.sample.time === worker.sample.time)) {
        events.push(['sample', { id: worker.id, pid: worker.pid, sample: worker.sample }]);
      }
      const blocked = worker.lastBlocked;
      if (blocked && blocked.time !== old?.lastBlocked?.time) {
        const top = blocked.frames[0];
        const site = top ? { function: top.functionName, url: top.url, line: top.line } : null;
        events.push(['blocked', { id: worker.id, pid: worker.pid, time: blocked.time, blockedMs: blocked.blockedMs, site, frames: blocked.frames, replaced: true }]);
      }
      // --report-blocked: one more block counted; the site seen last is where.
      if (samePid && old && worker.blocks > old.blocks) {
        const latest = [...worker.blockedSites].sort((a, b) => b.lastSeen - a.lastSeen)[0];
        events.push([
          'blocked',
          {
            id: worker.id,
            pid: worker.pid,
            time: latest?.lastSeen ?? Date.now(),
            blockedMs: latest?.maxMs ?? 0,
            site: latest ? { function: latest.function, url: latest.url, line: latest.line } : null,
            frames: [],
            replaced: false,
          },
        ]);
      }
    }
    this.#last = next;
    // Ready again: every worker ready, and not the same processes as at the last 'ready' (a reload,
    // restart, replacement or scale went through).
    if (next.workers.length > 0 && next.workers.every((worker: WorkerView) => worker.state === 'ready')) {
      const pids = next.workers.map((worker) => worker.pid).sort((a, b) => a - b).join(',');
      if (pids !== this.#readyPids) {
        this.#readyPids = pids;
        events.push(['ready', statusJson(next)]);
      }
    }
    return events;
  }
}

/** One event a handle emits, with its arguments. */
type ClusterEvent = { [K in keyof ClusterEvents]: [K, ...ClusterEvents[K]] }[keyof ClusterEvents];

/**
 * `value` if it is a whole number from 1 to `max`; a UsageError otherwise (the wire's uint32 would
 * turn 2^32+1 into 1 and 1.9 into 1: another worker than the one asked for).
 */
function whole(what: string, value: unknown, max: number): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 && value <= max) return value;
  throw new UsageError(`${what} must be a whole number from 1 to ${max}, got ${typeof value === 'number' ? String(value) : typeof value}`);
}

/** A scale() string as `clusterd scale` takes it (`'4'`, `'+2'`, `'-1'`); the master checks the count it makes. */
function scaleSpec(text: string): string {
  try {
    return parseScaleSpec(text);
  } catch (error) {
    throw new UsageError(`scale(): ${(error as Error).message}`);
  }
}

/** start()'s keys: the config file's, less `daemon` (its master is this process's child), plus its own. */
const START_KEYS: readonly string[] = [...new Set([...CONFIG_KEYS.filter((key) => key !== 'daemon'), 'cwd', 'output'])];

/**
 * Starts a cluster (a master in a child process); resolves once every worker is ready. The master stops
 * gracefully when this process exits; it does not hold this process alive (the handle does, until close()).
 */
export async function start(options: StartOptions): Promise<Cluster> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new UsageError('start(): expected an object of options, such as { entry: "dist/server.js" }');
  // A key set to undefined is a key not given, as a TypeScript caller's optional fields are.
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as StartOptions;
  // The config file's `daemon` key reached the master, which runs as this process's child here and
  // ignored it: a caller asking for a cluster that outlives it got one that stops with it.
  if ('daemon' in given) {
    throw new UsageError("start(): `daemon` is not an option of start(): its master runs as this process's child and stops when it exits; run `clusterd start -d` for a cluster of its own");
  }
  checkKeys('start() options', given, START_KEYS);
  const { cwd = process.cwd(), output = 'inherit', ...config } = given;
  if (output !== 'inherit' && output !== 'ignore') throw new UsageError(`start(): \`output\` is 'inherit' or 'ignore', got ${JSON.stringify(output)}`);
  if (typeof cwd !== 'string' || !isDirectory(cwd)) throw new UsageError(`start(): \`cwd\` must be an existing directory, got ${JSON.stringify(cwd)}`);
  if (typeof config.entry !== 'string') throw new UsageError('start(): `entry` is required: the app to run');
  // The file is read from a directory of its own: every path in it absolute, from `cwd`.
  const fileConfig = withAbsolutePaths({ ...config, entry: isAbsolute(config.entry) ? config.entry : resolve(cwd, config.entry) }, resolve(cwd));
  // Checked here, by the command line's own parsers, so that a bad option rejects with its name.
  const checked = masterOptions(startSettings({}, parseConfig(fileConfig, 'start() options')));
  // Opened here too, as `start -d` does, so that a log file nobody can write is a bad option, not a failed start.
  if (checked.logFile) checkLogFile(checked.logFile);
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-api-'));
  const file = join(dir, 'clusterd.config.json');
  writeFileSync(file, JSON.stringify(fileConfig), { mode: 0o600 });
  const bin = fileURLToPath(new URL('../bin/clusterd.js', import.meta.url));
  // DAEMON_ENV: the master reports ready (or why it failed) over IPC, as to `start -d`; API_CHILD: its
  // output stays on this process's stdout and stderr, and it stops when this process is gone.
  // --name, the file's own (or the entry's) again: the file is gone once read, and `ps` showed no name to find the master by.
  const master = spawn(process.execPath, [bin, 'start', '--config', file, '--name', checked.cluster.name], {
    cwd,
    stdio: ['ignore', output === 'inherit' ? 'inherit' : 'ignore', output === 'inherit' ? 'inherit' : 'ignore', 'ipc'],
    // PWD: the directory by the path it was given (a deploy's `current` symlink), as a shell sets it.
    env: { ...callerEnvironment(), [DAEMON_ENV]: API_CHILD, [API_CONFIG_ENV]: file, PWD: resolve(cwd) },
  });
  // The channel stays open to tie the master's life to this process's, but does not hold it alive.
  // It closes however this process ends (exit, crash, SIGKILL), and the master then stops gracefully:
  // a SIGTERM of ours besides would be a second request to stop, which kills the workers.
  master.channel?.unref();
  // The master removes the file once it read it; this process, if it goes first.
  const removeFile = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeFile);
  try {
    const info = await new Promise<ReadyInfo>((resolveReady, reject) => {
      master.on('message', (raw: unknown) => {
        const report = parseDaemonReport(raw);
        if (report?.type === 'ready') resolveReady(report.info);
        else if (report?.type === 'fatal') reject(new StartError(report.message.replace(/^error: /, ''), report.exitCode, report.lastOutput, report.code));
      });
      master.once('error', (error) => reject(new StartError(`could not start the master: ${error.message}`, ExitCode.INTERNAL, [])));
      master.once('exit', (code, signal) => reject(new StartError(`the master exited before the cluster was ready (${signal ?? `code ${code}`})`, code ?? ExitCode.INTERNAL, [])));
    });
    const client = new ControlClient({ transport: 'unix', socketPath: info.controlSocket });
    try {
      const cluster = new Cluster(client, await client.status(), { master, info });
      // From now on the handle's status stream holds this process alive while it is open, and after
      // close() this process's own work does: the master only stops when it exits (the channel closing).
      master.unref();
      return cluster;
    } catch (error) {
      client.close();
      throw error;
    }
  } catch (error) {
    // This process goes on: the master it could not use must not.
    if (master.exitCode === null && master.signalCode === null) master.kill('SIGTERM');
    throw error;
  } finally {
    process.off('exit', removeFile);
    removeFile();
  }
}

/**
 * The master could not get its cluster ready: why, the exit code `clusterd start` would leave with,
 * and the app's last output. `code` is the master's (ERR_CLUSTERD_LISTEN: a port in use,
 * ERR_CLUSTERD_NAME_IN_USE, ERR_CLUSTERD_BOOT...), or ERR_CLUSTERD_START when it went without saying
 * why (it crashed, or was killed).
 */
export class StartError extends ClusterdError {
  readonly #exitCode: number;
  readonly lastOutput: string[];
  constructor(message: string, exitCode: number, lastOutput: string[], code?: string) {
    super(code !== undefined && isErrorCode(code) ? code : 'ERR_CLUSTERD_START', message);
    this.name = 'StartError';
    this.#exitCode = exitCode;
    this.lastOutput = lastOutput;
  }

  /** The exit code `clusterd start` would have left with: the master's own, where it crashed. */
  override get exitCode(): number {
    return this.#exitCode;
  }
}

/** A handle on a running cluster, by name (this user's runtime directory) or over TCP with a token. */
export async function connect(target: string | ConnectTarget = {}): Promise<Cluster> {
  // Called from JavaScript too, where nothing checks the type.
  if (typeof target !== 'string' && (typeof target !== 'object' || target === null || Array.isArray(target))) {
    throw new UsageError(`connect(): expected a cluster name or { name, control, token }, got ${target === null ? 'null' : Array.isArray(target) ? 'an array' : typeof target}`);
  }
  if (typeof target === 'object') checkKeys('connect()', target, ['name', 'control', 'token']);
  const { name, control, token } = typeof target === 'string' ? { name: target } : target;
  if (name !== undefined && typeof name !== 'string') throw new UsageError(`connect(): \`name\` must be a string, got ${typeof name}`);
  if (control !== undefined && typeof control !== 'string') throw new UsageError(`connect(): \`control\` must be a HOST:PORT string, got ${typeof control}`);
  if (control !== undefined && token === undefined) throw new UsageError('connect(): a `control` address needs its `token`');
  // (Never echoed: it is a secret, and one read from a file often ends in a newline.)
  if (token !== undefined && !isTokenText(token)) throw new UsageError('connect(): `token` must be printable ASCII on one line, with no space at either end (a trailing newline from a file?)');
  const { client, status } = await connectControl({
    name,
    control: control === undefined ? undefined : { ...controlAddress(control), token: token! },
  });
  return new Cluster(client, status);
}

/** connect()'s `control`, named as its key, not as the command line's `--control`. */
function controlAddress(text: string): TcpAddress {
  try {
    return parseControlAddress(text, 'control', '`control`');
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    throw new UsageError(`connect(): ${error.message}`);
  }
}

/**
 * This process's environment for its master, less systemd's for this process: a caller that runs
 * under Type=notify (or socket activation) is the unit's main process, not the master.
 */
function callerEnvironment(): NodeJS.ProcessEnv {
  // NODE_OPTIONS' --inspect reaches the workers, not the master (see masterEnvironment).
  const env = { ...masterEnvironment(process.env) };
  dropSystemdEnv(env);
  return env;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolveExit) => child.once('exit', (code) => resolveExit(code)));
}
