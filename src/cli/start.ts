import { rmSync } from 'node:fs';
import inspector from 'node:inspector';
import { basename, dirname, extname, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { API_CHILD, API_CONFIG_ENV, DAEMON_ENV, reportLine } from './daemon.js';
import { daemonLogPath, type DaemonReport } from './daemon-parent.js';
import { fail } from './fail.js';
import { BALANCE_MODES, type BalanceMode } from '../master/balancers/index.js';
import { reusePortSupport } from '../master/balancers/shared.js';
import { appEnvironment, resolveEntry } from '../master/entry.js';
import { MAX_LOG_KEEP, type LogFileOptions } from '../master/log-file.js';
import { LOG_FORMATS, type LogFormat } from '../master/logs.js';
import type { MasterOptions } from '../master/run.js';
import { checkControlToken, dashboardToken, formatControlAddress, parseControlAddress, parseListenAddress, readControlToken, type DashboardTokenSources, type ListenAddress, type TcpAddress } from '../control/options.js';
import { BootError, ClusterdError, UsageError, oneLine } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { CLUSTER_NAME_RULE, nameFromEntry, parseChoice, parseDuration, parseInstances, parseInteger, parseName, parseNodeArgs, parseSignal, parseSize, parseWorkingDir } from '../options.js';
import { CONFIG_NAMES, loadConfig, type ConfigFile, type FlagValue } from './config-file.js';
import { restoreWorkerNodeOptions } from '../system/node-options.js';
import { configKey, MAX_BOOT_FAILURES, START_OPTIONS } from './start-options.js';

/** The long flags of `start`, which a config file gives as keys. */
const OPTION_FLAGS: ReadonlySet<string> = new Set(START_OPTIONS.map((spec) => spec.flag));

/** The command line as yargs gives it: every option undefined unless given (defaults come after the config file). */
interface StartArgs {
  entry?: string;
  config?: string;
  '--'?: (string | number)[];
  [flag: string]: unknown;
}

export const startCommand: CommandModule<object, StartArgs> = {
  command: 'start [entry]',
  describe: 'Run <entry> on N workers in the foreground, sharing its ports',
  builder: (yargs) => {
    let built = yargs
      .positional('entry', { type: 'string', describe: 'The app: .js, .mjs, .cjs, .ts, .mts or .cts (or `entry` in the config file)' })
      .option('config', { type: 'string', describe: `Read options from this file (default: ${CONFIG_NAMES.join(', ')} in the current directory, if there is one); flags win` });
    for (const spec of START_OPTIONS) {
      built = built.option(spec.flag, {
        type: spec.kind === 'boolean' ? 'boolean' : 'string',
        ...(spec.kind === 'strings' ? { array: true } : {}),
        ...(spec.alias ? { alias: spec.alias } : {}),
        ...(spec.choices ? { choices: spec.choices as string[] } : {}),
        // Shown in --help, but not set: a flag left out must not hide the config file's value.
        ...(spec.default !== undefined ? { defaultDescription: String(spec.default) } : {}),
        describe: spec.describe,
      });
    }
    return built
      .example('$0 start app.ts -i 4', 'four workers on the ports app.ts listens on')
      .example('$0 start server.js -- --port 8080', 'arguments after -- go to the app')
      .example('$0 start --config deploy/clusterd.config.json', 'the options (and the entry) from a file');
  },
  handler: (args) => {
    void start(args).catch(fail);
  },
};

/** What `start` runs: the command line over the config file over the defaults. */
export interface StartSettings {
  /** Option values by long flag, in command-line form. */
  flags: Map<string, FlagValue>;
  /** The file each value came from, for the flags (and `entry`) the command line did not give. */
  fromFile: Map<string, string>;
  /** The file's values that the command line replaced, with their file: checked all the same. */
  overridden: Map<string, { value: FlagValue; file: string }>;
  entry: string;
  args: string[];
  env: Record<string, string>;
}

/** Merges the command line with the config file (flags win) and the defaults; throws a UsageError. */
export function startSettings(args: StartArgs, config: ConfigFile | null): StartSettings {
  const flags = new Map<string, FlagValue>();
  const fromFile = new Map<string, string>();
  const overridden = new Map<string, { value: FlagValue; file: string }>();
  for (const spec of START_OPTIONS) {
    const given = args[spec.flag] as FlagValue | undefined;
    const filed = config?.flags.get(spec.flag);
    if (given !== undefined) {
      flags.set(spec.flag, given);
      if (filed !== undefined) overridden.set(spec.flag, { value: filed, file: config!.path });
    } else if (filed !== undefined) {
      flags.set(spec.flag, filed);
      fromFile.set(spec.flag, config!.path);
    } else if (spec.default !== undefined) flags.set(spec.flag, spec.default);
  }
  // A token given on the command line replaces the file's, whichever form each has: the file's
  // token file next to a flag's token read as two tokens given, not as the flag winning.
  for (const pair of [['control-token', 'control-token-file'], ['dashboard-token', 'dashboard-token-file']] as const) {
    for (const [mine, other] of [pair, [pair[1], pair[0]]] as const) {
      if (args[mine] !== undefined && fromFile.has(other)) {
        flags.delete(other);
        fromFile.delete(other);
      }
    }
  }
  // An empty word (`clusterd start "$APP"` with APP unset) is no entry, not the current directory.
  const given = args.entry === '' ? undefined : args.entry;
  const entry = given ?? config?.entry;
  if (given === undefined && config?.entry !== undefined) fromFile.set('entry', config.path);
  if (entry === undefined) {
    // `start -- app.js`: the words after `--` are the app's own arguments, never the entry.
    const afterDashes = (args['--'] ?? []).length > 0 ? '; the words after `--` are the app\'s own arguments, not the app (`clusterd start <entry> -- ARGS...`)' : '';
    throw new UsageError(`Missing the app to run: \`clusterd start <entry>\`, or \`entry\` in a config file (${CONFIG_NAMES[0]} in the current directory, or --config FILE)${afterDashes}`);
  }
  const cliArgs = args['--'];
  return { flags, fromFile, overridden, entry, args: cliArgs && cliArgs.length > 0 ? cliArgs.map(String) : (config?.args ?? []), env: config?.env ?? {} };
}

/**
 * Each option's own parser, for a value alone (checks across values are masterOptions'): one table
 * for the value that is used and for a file's value that a flag replaced, which is checked too.
 */
const VALUE_PARSERS = {
  instances: (value: FlagValue) => parseInstances(value),
  'node-arg': (value: FlagValue) => parseNodeArgs(value),
  cwd: (value: FlagValue) => parseWorkingDir(String(value)),
  name: (value: FlagValue) => parseName(value),
  'max-boot-failures': (value: FlagValue) => parseInteger('max-boot-failures', value, { min: 1, max: MAX_BOOT_FAILURES }),
  balance: (value: FlagValue) => parseChoice('balance', value, BALANCE_MODES),
  // Under 10 ms, ordinary garbage-collection pauses would count as a blocked loop.
  watchdog: (value: FlagValue) => parseDuration('watchdog', value, { min: 10, off: true }),
  'report-blocked': (value: FlagValue) => parseDuration('report-blocked', value, { min: 10, off: true }),
  // The loop-delay probe ticks every 10 ms: a shorter interval would measure nothing.
  'stats-interval': (value: FlagValue) => parseDuration('stats-interval', value, { min: 10, off: true }),
  control: (value: FlagValue) => parseControlAddress(value),
  metrics: (value: FlagValue) => parseControlAddress(value, 'metrics'),
  health: (value: FlagValue) => parseControlAddress(value, 'health'),
  dashboard: (value: FlagValue) => parseListenAddress(value, 'dashboard'),
  // 0 would fail every boot before it could start: a timeout needs at least 1 ms.
  'listen-timeout': (value: FlagValue) => parseDuration('listen-timeout', value),
  // 0 is a choice: no draining, every worker is killed at once on stop (exit code 5).
  grace: (value: FlagValue) => parseDuration('grace', value, { min: 0 }),
  'kill-signal': (value: FlagValue) => parseSignal('kill-signal', value),
  'log-format': (value: FlagValue) => parseChoice('log-format', value, LOG_FORMATS),
  'max-memory': (value: FlagValue) => parseSize('max-memory', value),
  'log-max-size': (value: FlagValue) => parseSize('log-max-size', value, { min: 1024 }),
  'log-keep': (value: FlagValue) => parseInteger('log-keep', value, { min: 0, max: MAX_LOG_KEEP }),
  'log-file': (value: FlagValue) => parseLogFilePath(String(value)),
  'shutdown-delay': (value: FlagValue) => parseDuration('shutdown-delay', value, { min: 0 }),
  // Checked without --control too: a token it would refuse once --control is added is refused now.
  'control-token': (value: FlagValue) => checkControlToken(String(value)),
};
type ParsedFlag = keyof typeof VALUE_PARSERS;

/** Validates the merged settings into the master's options; a UsageError names the flag, or the key and its file. */
export function masterOptions(settings: StartSettings): MasterOptions {
  const { flags, fromFile } = settings;
  const text = (flag: string): string | undefined => {
    const value = flags.get(flag);
    return value === undefined ? undefined : String(value);
  };
  const bool = (flag: string): boolean => flags.get(flag) === true;
  // A value from the file that a parser refuses: the file and its keys, not flags nobody typed (those
  // the message names besides, from that file or not given at all, are named as keys too).
  const inFile = (flag: string, error: unknown): unknown => {
    const file = fromFile.get(flag);
    if (!file || !(error instanceof UsageError)) return error;
    const named = error.message.replace(/`--([a-z][a-z-]*)`/g, (whole, other: string) =>
      OPTION_FLAGS.has(other) && (fromFile.get(other) === file || !flags.has(other)) ? `\`${configKey(other)}\`` : whole,
    );
    return new UsageError(`${file}: ${named}`);
  };
  // Where a value was given, for a message the master makes later. start()'s master has no command
  // line to name, given or not (and its file is gone): named as start()'s options.
  const givenAs = (flag: string): string => {
    if (process.env[DAEMON_ENV] === API_CHILD) return `start() options: \`${configKey(flag)}\``;
    const file = fromFile.get(flag);
    return file === undefined ? `--${flag}` : `${file}: \`${configKey(flag)}\``;
  };
  const checked = <T>(flag: string, parse: () => T): T => {
    try {
      return parse();
    } catch (error) {
      throw inFile(flag, error);
    }
  };
  // The flag's value, parsed; `text(flag)` where a default makes it always given.
  const parsed = <F extends ParsedFlag>(flag: F): ReturnType<(typeof VALUE_PARSERS)[F]> =>
    checked(flag, () => VALUE_PARSERS[flag](flags.get(flag) as FlagValue) as ReturnType<(typeof VALUE_PARSERS)[F]>);
  // A file's value that a flag replaced is still the file's mistake: `{"instances": 1.5}` with -i 1 started.
  for (const [flag, { value, file }] of settings.overridden) {
    if (!(flag in VALUE_PARSERS)) continue;
    try {
      VALUE_PARSERS[flag as ParsedFlag](value);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      throw new UsageError(`${file}: ${error.message.replace(`\`--${flag}\``, `\`${configKey(flag)}\``)} (though \`--${flag}\` replaces it)`);
    }
  }
  const instances = parsed('instances');
  const nodeArgs = flags.has('node-arg') ? parsed('node-arg') : [];
  const cwd = checked('cwd', () => parseWorkingDir(text('cwd')));
  const entry = checked('entry', () => resolveEntry(settings.entry, nodeArgs, cwd, appEnvironment(settings.env)));
  const name = checked('name', () => parseName(text('name') ?? entryName(entry.path, entry.directoryName)));
  const maxBootFailures = parsed('max-boot-failures');
  const balance = parsed('balance') as BalanceMode;
  const unsupported = balance === 'reuseport' ? reusePortSupport() : null;
  if (unsupported) throw new UsageError(unsupported);
  const watchdogMs = parsed('watchdog');
  const reportBlockedMs = parsed('report-blocked');
  const control = text('control');
  const controlTokens = { token: text('control-token'), tokenFile: text('control-token-file') };
  // A token refused is named where it was given; a token missing, where --control was.
  const controlTokenFlag = controlTokens.token !== undefined ? 'control-token' : controlTokens.tokenFile !== undefined ? 'control-token-file' : 'control';
  // With --control, readControlToken checks it below; without, here.
  if (control === undefined && controlTokens.token !== undefined) parsed('control-token');
  const controlTcp =
    control === undefined ? null : { ...parsed('control'), token: checked(controlTokenFlag, () => readControlToken(controlTokens)) };
  const metrics = text('metrics');
  const health = text('health');
  const dashboard = text('dashboard');
  const dashboardTokens = { token: text('dashboard-token'), tokenFile: text('dashboard-token-file') };
  const tokenFlag = dashboardTokens.token !== undefined ? 'dashboard-token' : dashboardTokens.tokenFile !== undefined ? 'dashboard-token-file' : null;
  if (dashboard === undefined && tokenFlag !== null) throw inFile(tokenFlag, new UsageError(`\`--${tokenFlag}\` allows actions on the \`--dashboard\`: give one too`));
  const maxMemory = text('max-memory');
  const statsIntervalMs = parsed('stats-interval');
  // The limit is judged from the stats stream: without it the worker would grow past it unseen.
  if (maxMemory !== undefined && statsIntervalMs === 0) {
    // Named where the file gave one of the two (the other named as a key too, if it is there).
    checked(fromFile.has('max-memory') ? 'max-memory' : 'stats-interval', () => {
      throw new UsageError('`--max-memory` is judged from the workers\' stats, which `--stats-interval` 0 turns off: give an interval, or no limit');
    });
  }
  const own = {
    control: controlTcp,
    metrics: metrics === undefined ? null : parsed('metrics'),
    health: health === undefined ? null : parsed('health'),
    dashboard: dashboard === undefined ? null : dashboardOptions(parsed('dashboard'), dashboardTokens, (parse) => checked(tokenFlag ?? 'dashboard', parse)),
  };
  checkOwnPorts(own, checked);
  return {
    cluster: {
      name,
      entry,
      args: settings.args,
      env: settings.env,
      instances,
      balance,
      waitReady: bool('wait-ready'),
      listenTimeoutMs: parsed('listen-timeout'),
      graceMs: parsed('grace'),
      killSignal: parsed('kill-signal'),
      maxBootFailures,
      statsIntervalMs,
      watchdogMs,
      reportBlockedMs,
      nodeArgGiven: givenAs('node-arg'),
      listenTimeoutGiven: givenAs('listen-timeout'),
    },
    logFormat: parsed('log-format') as LogFormat,
    maxMemory: maxMemory === undefined ? null : parsed('max-memory'),
    controlTcp,
    metrics: own.metrics,
    health: own.health,
    dashboard: own.dashboard,
    logFile: logFileOptions(text, checked, name, settings.flags.get('daemon') === true, givenAs('log-file')),
    shutdownDelayMs: parsed('shutdown-delay'),
  };
}

/** Whether two hosts bound on one port clash: `::` takes both families (dual-stack), `0.0.0.0` every IPv4 address, so [::1] beside it binds. */
export function hostsOverlap(a: string, b: string): boolean {
  const ipv6 = (host: string): boolean => host.includes(':');
  return a === b || a === '::' || b === '::' || (a === '0.0.0.0' && !ipv6(b)) || (b === '0.0.0.0' && !ipv6(a));
}

/**
 * The master's own listeners each on a port of their own: two on one fixed port (and one host, or a
 * wildcard) failed at start as "cannot serve health on 127.0.0.1:9100: address already in use",
 * without a word that it was --metrics that held it.
 */
function checkOwnPorts(own: Record<'control' | 'metrics' | 'health' | 'dashboard', { host: string; port: number } | { listen: ListenAddress } | null>, checked: <T>(flag: string, parse: () => T) => T): void {
  const seen: [string, TcpAddress][] = [];
  for (const [flag, value] of Object.entries(own)) {
    const address = value === null ? null : 'listen' in value ? value.listen : value;
    if (address === null || 'path' in address || address.port === 0) continue;
    const clash = seen.find(([, other]) => other.port === address.port && hostsOverlap(other.host, address.host));
    if (clash) {
      checked(flag, () => {
        throw new UsageError(`\`--${flag}\` ${formatControlAddress(address)} is on \`--${clash[0]}\`'s port (${formatControlAddress(clash[1])}): give each its own port`);
      });
    }
    seen.push([flag, address]);
  }
}

/** --dashboard's address and token: on a unix socket, actions need none (the socket is owner-only). */
function dashboardOptions(listen: ListenAddress, sources: DashboardTokenSources, checked: <T>(parse: () => T) => T): NonNullable<MasterOptions['dashboard']> {
  return { listen, token: checked(() => dashboardToken(listen, sources, '`--dashboard`')) };
}

/** --log-file (by default <runtime dir>/<name>.log for the master of `start -d`) and its rotation; `given`: where its path was given. */
function logFileOptions(
  text: (flag: string) => string | undefined,
  checked: <T>(flag: string, parse: () => T) => T,
  name: string,
  daemon: boolean,
  given: string,
): LogFileOptions | null {
  const maxSize = text('log-max-size');
  const options = {
    maxSize: maxSize === undefined ? null : checked('log-max-size', () => VALUE_PARSERS['log-max-size'](maxSize)),
    keep: checked('log-keep', () => VALUE_PARSERS['log-keep'](text('log-keep')!)),
  };
  const path = text('log-file');
  // A file that cannot be opened is found only when it is opened (by the master, or by `start -d`):
  // the line names where the path was given (`given`), as for any other value of the config file.
  if (path !== undefined) return { path: checked('log-file', () => VALUE_PARSERS['log-file'](path)), given, ...options };
  if (process.env[DAEMON_ENV] && process.env[DAEMON_ENV] !== API_CHILD) return { path: daemonLogPath(name), ...options };
  // `start -d` itself (not its master yet): the master it starts has the file, and rotates it.
  if (maxSize !== undefined && !daemon) {
    checked('log-max-size', () => {
      throw new UsageError('`--log-max-size` rotates the `--log-file`: give one (or run with -d, whose log is a file)');
    });
  }
  return null;
}

/**
 * --log-file's path, absolute. A blank one (`--log-file " "`) or a directory's name (`logs/`) was
 * opened as it came, and the lines went to a new plain file named ` ` or `logs` where start ran.
 */
function parseLogFilePath(value: string): string {
  const text = value.trim();
  if (text === '') throw new UsageError(`Expected \`--log-file\` to be a file's path, got \`${value}\``);
  if (text.endsWith('/')) throw new UsageError(`Expected \`--log-file\` to be a file's path, not a directory's, got \`${text}\``);
  return resolve(text);
}

/**
 * NODE_OPTIONS=--inspect is meant for the app: the workers inherit it (each on a port of its own, see
 * inspectorArgs). But Node applies it to `clusterd start` too, which it makes listen on 127.0.0.1:9229,
 * where any local user may run code as the master (or, with -d, as the process that waits for it,
 * until every worker is ready). Opened by NODE_OPTIONS, not by flags given to this very process
 * (`node --inspect bin/clusterd.js`, on purpose), it is closed before anything else runs, and said
 * so; its port was open for the CLI's start-up. The processes started from here get none (see
 * node-options.ts).
 */
function closeInheritedInspector(): void {
  const url = inspector.url();
  if (url === undefined || process.execArgv.some((arg) => /^--inspect/.test(arg))) return;
  inspector.close();
  process.stderr.write(`clusterd: NODE_OPTIONS' --inspect is for the workers: clusterd start closed the inspector it opened at ${new URL(url).host}\n`);
}

async function start(args: StartArgs): Promise<void> {
  closeInheritedInspector();
  // `start -d`'s and start()'s master: its workers inherit the NODE_OPTIONS its own node was started without.
  if (process.env[DAEMON_ENV]) restoreWorkerNodeOptions();
  const settings = startSettings(args, await loadConfig(args.config).finally(() => removeApiConfig(args.config)));
  const options = masterOptions(settings);
  // The master's modules load only here: `clusterd status` and friends never pay for them.
  // The daemon's own master (DAEMON_ENV) reads the same config file: `daemon: true` there must not fork again.
  if (settings.flags.get('daemon') === true && !process.env[DAEMON_ENV]) {
    const { startDaemon } = await import('./daemon-parent.js');
    process.exit(await startDaemon({ name: options.cluster.name, argv: process.argv.slice(2), logFile: options.logFile }));
  }
  const { runMaster } = await import('../master/run.js');
  if (process.env[DAEMON_ENV]) runAsDaemon(options, runMaster);
  else await runMaster(options);
}

/** start()'s config file (API_CONFIG_ENV), gone once read: it holds every option, secrets included. */
function removeApiConfig(config: string | undefined): void {
  const written = process.env[API_CONFIG_ENV];
  delete process.env[API_CONFIG_ENV];
  if (written === undefined || config === undefined || resolve(config) !== written || process.env[DAEMON_ENV] !== API_CHILD) return;
  rmSync(dirname(written), { recursive: true, force: true });
}

/** The master of `start -d`: runs as usual, telling the process that started it how boot went. */
function runAsDaemon(options: MasterOptions, runMaster: typeof import('../master/run.js').runMaster): void {
  const api = process.env[DAEMON_ENV] === API_CHILD;
  delete process.env[DAEMON_ENV];
  // start()'s master lives as long as its caller: the channel closes when the caller exits or is
  // killed (SIGKILL, the OOM killer: no 'exit' handler of its own runs), and the cluster stops as on
  // a first SIGTERM (runMaster's callerGone), however many signals the master had besides.
  const caller = new AbortController();
  const callerGone = (): void => caller.abort();
  if (api) {
    process.once('disconnect', callerGone);
    // Closed already (the caller killed while this process loaded its modules and read its options):
    // the 'disconnect' came with nobody to hear it.
    if (!process.connected) callerGone();
  }
  const report = (message: DaemonReport, then: () => void = () => {}, stayTied = false): void => {
    if (!process.connected) return then();
    // Once the parent has its answer the master of `start -d` is on its own: no IPC keeps it tied.
    process.send!(message, () => {
      if (!stayTied) {
        process.off('disconnect', callerGone);
        process.disconnect();
      }
      then();
    });
  };
  runMaster(options, {
    ...(api ? { callerGone: caller.signal } : {}),
    onReady: (info) => report({ type: 'ready', info }, undefined, api),
    // start()'s caller sees the master's own output (its `output` option); `start -d`'s sees only these.
    ...(api ? {} : { onWarning: (message: string) => report({ type: 'warning', message: reportLine(message) }, undefined, true) }),
    // Lines within what the parent accepts: a failed boot's last lines are the app's (a minified bundle's line is long).
    onFatal: (error) =>
      report({ type: 'fatal', message: reportLine(`error: ${error.message}`), lastOutput: error instanceof BootError ? error.lastOutput.map(reportLine) : [], exitCode: error.exitCode, code: error.code }),
  }).catch((error: unknown) => {
    const exitCode = error instanceof ClusterdError ? error.exitCode : ExitCode.INTERNAL;
    // The name is another master's, and so is the log file this one's stderr is on (`start -d`'s
    // <name>.log): its parent passed the check for a running cluster just before that master
    // claimed the name. The parent says why; the running cluster's log is not this master's to write.
    const othersLog = !api && error instanceof ClusterdError && error.code === 'ERR_CLUSTERD_NAME_IN_USE';
    report({ type: 'fatal', message: reportLine(oneLine(error)), lastOutput: [], exitCode, ...(error instanceof ClusterdError ? { code: error.code } : {}) }, () =>
      othersLog ? process.exit(exitCode) : fail(error),
    );
  });
}

/** The cluster's name when no --name is given: the entry file's (a directory's: its package's), made to fit. */
function entryName(path: string, directoryName?: string): string {
  const base = directoryName ?? basename(path, extname(path));
  const name = nameFromEntry(base);
  if (name === null) throw new UsageError(`the entry \`${directoryName ?? basename(path)}\` gives no usable cluster name: give one with --name (${CLUSTER_NAME_RULE})`);
  return name;
}
