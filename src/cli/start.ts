import { basename, extname } from 'node:path';
import type { CommandModule } from 'yargs';
import { DAEMON_ENV } from './daemon.js';
import type { DaemonReport } from './daemon-parent.js';
import { fail } from './fail.js';
import { BALANCE_MODES, type BalanceMode } from '../master/balancers/index.js';
import { reusePortSupport } from '../master/balancers/shared.js';
import { resolveEntry } from '../master/entry.js';
import { LOG_FORMATS, LogSink, type LogFormat } from '../master/logs.js';
import type { MasterOptions } from '../master/run.js';
import { parseControlAddress, readControlToken, TOKEN_ENV } from '../control/options.js';
import { BootError, ClusterdError, UsageError, oneLine } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { MAX_INSTANCES, parseChoice, parseDuration, parseInstances, parseInteger, parseName, parseSignal, parseSize } from '../options.js';

/** More boots in a row than this is a crash loop, not patience. */
const MAX_BOOT_FAILURES = 1000;

interface StartArgs {
  entry: string;
  instances: string;
  name?: string;
  balance: string;
  'wait-ready': boolean;
  'listen-timeout': string;
  grace: string;
  'kill-signal': string;
  'max-boot-failures': string;
  'stats-interval': string;
  watchdog: string;
  'report-blocked': string;
  'max-memory'?: string;
  metrics?: string;
  control?: string;
  'control-token'?: string;
  'control-token-file'?: string;
  daemon: boolean;
  'log-format': string;
  'node-arg': string[];
  '--'?: (string | number)[];
}

export const startCommand: CommandModule<object, StartArgs> = {
  command: 'start <entry>',
  describe: 'Run <entry> on N workers in the foreground, sharing its ports',
  builder: (yargs) =>
    yargs
      .positional('entry', { type: 'string', demandOption: true, describe: 'The app: .js, .mjs, .cjs, .ts, .mts or .cts' })
      .option('instances', { alias: 'i', type: 'string', default: 'max', describe: `Number of workers (1 to ${MAX_INSTANCES}), or \`max\` for one per core` })
      .option('name', { type: 'string', describe: 'Cluster name (default: the entry file name)' })
      .option('balance', { type: 'string', default: 'fair', choices: BALANCE_MODES as unknown as string[], describe: 'fair: workers accept for themselves, each up to an even share of the open connections, lagging or stalled workers paused; rr: the master hands each connection to the next free worker; least: to the free worker with the fewest connections and the lowest loop lag; sticky: one client address always to the same worker; shared: workers accept from one shared socket; reuseport: each worker its own SO_REUSEPORT socket (Node >= 22.12, Linux)' })
      .option('wait-ready', { type: 'boolean', default: false, describe: "A worker is ready when the app calls process.send('ready'), not when its servers listen" })
      .option('listen-timeout', { type: 'string', default: '10s', describe: 'How long a worker may take to get ready before it counts as a failed boot (1ms to 24d)' })
      .option('grace', { type: 'string', default: '10s', describe: 'How long workers may drain on stop before they are killed (0: killed at once; up to 24d)' })
      .option('kill-signal', { type: 'string', default: 'SIGTERM', describe: "The signal the app's listeners hear on a graceful stop (process.on(SIGNAL)), as its servers drain; not SIGKILL, SIGSTOP or SIGUSR1" })
      .option('max-boot-failures', { type: 'string', default: '3', describe: `Give up after this many failed boots in a row (1 to ${MAX_BOOT_FAILURES})` })
      .option('stats-interval', { type: 'string', default: '1s', describe: 'How often each worker reports loop lag, ELU, CPU, memory and HTTP counters (10ms to 24d); 0 turns them off' })
      .option('watchdog', { type: 'string', default: '5s', describe: "Replace a worker whose event loop stays blocked this long, logging its JavaScript stack (10ms to 24d); 0 turns it off (clusterd stack still works)" })
      .option('report-blocked', { type: 'string', default: '100ms', describe: 'Take the JavaScript stack of a worker whose event loop stays blocked this long, without harming it, and keep where it was blocked for status (10ms to 24d); 0 turns it off' })
      .option('max-memory', { type: 'string', describe: 'Replace (drained, new worker first) a worker whose RSS stays above this size, from 16M to 1T, e.g. 512M' })
      .option('log-format', { type: 'string', default: 'text', choices: LOG_FORMATS as unknown as string[], describe: 'text: `[w2] line`; json: one object per line' })
      .option('daemon', { alias: 'd', type: 'boolean', default: false, describe: 'Run in the background; return once every worker is ready (or the app failed). Logs go to <runtime dir>/<name>.log' })
      .option('metrics', { type: 'string', describe: 'Serve Prometheus metrics on HOST:PORT/metrics' })
      .option('control', { type: 'string', describe: 'Also serve the control plane on TCP HOST:PORT (needs a token)' })
      .option('control-token', { type: 'string', describe: `Token required on --control (or $${TOKEN_ENV})` })
      .option('control-token-file', { type: 'string', describe: 'Read the --control token from this file' })
      .option('node-arg', { type: 'string', array: true, default: [], describe: 'A flag for the workers\' node, e.g. --node-arg=--max-old-space-size=512 (repeatable)' })
      .example('$0 start app.ts -i 4', 'four workers on the ports app.ts listens on')
      .example('$0 start server.js -- --port 8080', 'arguments after -- go to the app'),
  handler: (args) => {
    void start(args).catch(fail);
  },
};

/** Validates the command line into the master's options; throws a UsageError naming the flag. */
export function masterOptions(args: StartArgs): MasterOptions {
  const instances = parseInstances(args.instances);
  const entry = resolveEntry(args.entry, args['node-arg']);
  const name = parseName(args.name ?? basename(entry.path, extname(entry.path)));
  const maxBootFailures = parseInteger('max-boot-failures', args['max-boot-failures'], { min: 1, max: MAX_BOOT_FAILURES });
  const balance = parseChoice('balance', args.balance, BALANCE_MODES) as BalanceMode;
  const unsupported = balance === 'reuseport' ? reusePortSupport() : null;
  if (unsupported) throw new UsageError(unsupported);
  // Under 10 ms, ordinary garbage-collection pauses would count as a blocked loop.
  const watchdogMs = parseDuration('watchdog', args.watchdog, { min: 10, off: true });
  const reportBlockedMs = parseDuration('report-blocked', args['report-blocked'], { min: 10, off: true });
  const controlTcp =
    args.control === undefined
      ? null
      : { ...parseControlAddress(args.control), token: readControlToken({ token: args['control-token'], tokenFile: args['control-token-file'] }) };
  return {
    cluster: {
      name,
      entry,
      args: (args['--'] ?? []).map(String),
      instances,
      balance,
      waitReady: args['wait-ready'],
      // 0 would fail every boot before it could start: a timeout needs at least 1 ms.
      listenTimeoutMs: parseDuration('listen-timeout', args['listen-timeout']),
      // 0 is a choice: no draining, every worker is killed at once on stop (exit code 5).
      graceMs: parseDuration('grace', args.grace, { min: 0 }),
      killSignal: parseSignal('kill-signal', args['kill-signal']),
      maxBootFailures,
      // The loop-delay probe ticks every 10 ms: a shorter interval would measure nothing.
      statsIntervalMs: parseDuration('stats-interval', args['stats-interval'], { min: 10, off: true }),
      watchdogMs,
      reportBlockedMs,
      logs: new LogSink({ format: parseChoice('log-format', args['log-format'], LOG_FORMATS) as LogFormat }),
    },
    maxMemory: args['max-memory'] === undefined ? null : parseSize('max-memory', args['max-memory']),
    controlTcp,
    metrics: args.metrics === undefined ? null : parseControlAddress(args.metrics, 'metrics'),
  };
}

async function start(args: StartArgs): Promise<void> {
  const options = masterOptions(args);
  // The master's modules load only here: `clusterd status` and friends never pay for them.
  if (args.daemon) {
    const { startDaemon } = await import('./daemon-parent.js');
    process.exit(await startDaemon({ name: options.cluster.name, argv: process.argv.slice(2) }));
  }
  const { runMaster } = await import('../master/run.js');
  if (process.env[DAEMON_ENV]) runAsDaemon(options, runMaster);
  else await runMaster(options);
}

/** The master of `start -d`: runs as usual, telling the process that started it how boot went. */
function runAsDaemon(options: MasterOptions, runMaster: typeof import('../master/run.js').runMaster): void {
  delete process.env[DAEMON_ENV];
  const report = (message: DaemonReport, then: () => void = () => {}): void => {
    if (!process.connected) return then();
    // Once the parent has its answer the master is on its own: no IPC keeps it tied.
    process.send!(message, () => {
      process.disconnect();
      then();
    });
  };
  runMaster(options, {
    onReady: (info) => report({ type: 'ready', info }),
    onFatal: (error) =>
      report({ type: 'fatal', message: `error: ${error.message}`, lastOutput: error instanceof BootError ? error.lastOutput : [], exitCode: error.exitCode }),
  }).catch((error: unknown) => {
    const exitCode = error instanceof ClusterdError ? error.exitCode : ExitCode.INTERNAL;
    report({ type: 'fatal', message: oneLine(error), lastOutput: [], exitCode }, () => fail(error));
  });
}
