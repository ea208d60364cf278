// start(): a master as a child process, its options checked first by the command line's own parsers.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_KEYS, parseConfig, withAbsolutePaths } from '../cli/config-file.js';
import { checkKeys } from '../cli/known-keys.js';
import { API_CHILD, API_CONFIG_ENV, DAEMON_ENV } from '../cli/daemon.js';
import { parseDaemonReport } from '../cli/daemon-parent.js';
import { masterEnvironment } from '../system/node-options.js';
import { masterOptions, startSettings } from '../cli/start.js';
import { checkLogFile } from '../master/log-file.js';
import { ControlClient } from '../control/client.js';
import { ClusterdError, UsageError, isErrorCode } from '../errors.js';
import { dropSystemdEnv } from '../system/systemd-env.js';
import { ExitCode } from '../exit-codes.js';
import type { ReadyInfo } from '../master/run.js';
import { Cluster } from './cluster.js';

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
  const bin = fileURLToPath(new URL('../../bin/clusterd.js', import.meta.url));
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
