import { basename, extname } from 'node:path';
import { setTimeout as pause } from 'node:timers/promises';
import type { CommandModule } from 'yargs';
import { fail } from './main.js';
import { BALANCE_MODES, type BalanceMode } from '../master/balancers/index.js';
import { resolveEntry } from '../master/entry.js';
import { LOG_FORMATS, LogSink, type LogFormat } from '../master/logs.js';
import { Operations } from '../master/operations.js';
import { Supervisor } from '../master/supervisor.js';
import { formatAddress } from '../worker/servers.js';
import { BootError, ClusterdError } from '../errors.js';
import { parseChoice, parseDuration, parseInstances, parseName, parseSize } from '../options.js';
import { enforceMemoryLimit } from '../master/memory-limit.js';

interface StartArgs {
  entry: string;
  instances: string;
  name?: string;
  balance: string;
  'wait-ready': boolean;
  'listen-timeout': string;
  grace: string;
  'max-boot-failures': number;
  'stats-interval': string;
  'max-memory'?: string;
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
      .option('instances', { alias: 'i', type: 'string', default: 'max', describe: 'Number of workers, or `max` for one per core' })
      .option('name', { type: 'string', describe: 'Cluster name (default: the entry file name)' })
      .option('balance', { type: 'string', default: 'rr', choices: BALANCE_MODES as unknown as string[], describe: 'rr: the master hands each connection to the next free worker; shared: workers accept from one shared socket' })
      .option('wait-ready', { type: 'boolean', default: false, describe: "A worker is ready when the app calls process.send('ready'), not when its servers listen" })
      .option('listen-timeout', { type: 'string', default: '10s', describe: 'How long a worker may take to get ready before it counts as a failed boot' })
      .option('grace', { type: 'string', default: '10s', describe: 'How long workers may drain on stop before they are killed' })
      .option('max-boot-failures', { type: 'number', default: 3, describe: 'Give up after this many failed boots in a row' })
      .option('stats-interval', { type: 'string', default: '1s', describe: 'How often each worker reports loop lag, ELU, CPU, memory and HTTP counters; 0 turns them off' })
      .option('max-memory', { type: 'string', describe: 'Replace (drained, new worker first) a worker whose RSS stays above this size, e.g. 512M' })
      .option('log-format', { type: 'string', default: 'text', choices: LOG_FORMATS as unknown as string[], describe: 'text: `[w2] line`; json: one object per line' })
      .option('node-arg', { type: 'string', array: true, default: [], describe: 'A flag for the workers\' node, e.g. --node-arg=--max-old-space-size=512 (repeatable)' })
      .example('$0 start app.ts -i 4', 'four workers on the ports app.ts listens on')
      .example('$0 start server.js -- --port 8080', 'arguments after -- go to the app'),
  handler: (args) => {
    try {
      run(args);
    } catch (error) {
      fail(error);
    }
  },
};

function run(args: StartArgs): void {
  const instances = parseInstances(args.instances);
  const entry = resolveEntry(args.entry, args['node-arg']);
  const name = parseName(args.name ?? basename(entry.path, extname(entry.path)));
  const maxBootFailures = args['max-boot-failures'];
  if (!Number.isInteger(maxBootFailures) || maxBootFailures < 1) {
    throw new ClusterdError('ERR_CLUSTERD_USAGE', `Expected \`--max-boot-failures\` to be a positive integer, got \`${maxBootFailures}\``, { exitCode: 2 });
  }
  const maxMemory = args['max-memory'] === undefined ? null : parseSize('max-memory', args['max-memory']);
  const logs = new LogSink({ format: parseChoice('log-format', args['log-format'], LOG_FORMATS) as LogFormat });
  const supervisor = new Supervisor({
    name,
    entry,
    args: (args['--'] ?? []).map(String),
    instances,
    balance: parseChoice('balance', args.balance, BALANCE_MODES) as BalanceMode,
    waitReady: args['wait-ready'],
    listenTimeoutMs: parseDuration('listen-timeout', args['listen-timeout']),
    graceMs: parseDuration('grace', args.grace),
    maxBootFailures,
    statsIntervalMs: parseDuration('stats-interval', args['stats-interval']),
    logs,
  });

  if (maxMemory !== null) enforceMemoryLimit({ supervisor, limitBytes: maxMemory, logs });
  supervisor.once('ready', () => {
    const workers = supervisor.workers().map((worker) => ({ id: worker.id, pid: worker.pid }));
    const addresses = supervisor.addresses().map(formatAddress);
    logs.event(
      'ready',
      `${name} ready on ${addresses.join(', ') || '(no ports)'} with ${workers.length} worker${workers.length === 1 ? '' : 's'} (pids ${workers.map((w) => w.pid).join(', ')})`,
      { name, addresses, workers, masterPid: process.pid },
    );
  });
  supervisor.on('fatal', (error: ClusterdError) => {
    const lastOutput = error instanceof BootError ? error.lastOutput : [];
    logs.event('fatal', `error: ${error.message}`, { code: error.code, lastOutput }, 'error');
  });
  supervisor.once('stopped', (code: number) => {
    process.exitCode = code;
    logs.event('stopped', `${name} stopped`, { exitCode: code });
    // Every worker's output has reached our streams, but Node still queues what a lagging
    // pipe reader has not taken, and process.exit() would drop it: exit once both are flushed.
    void flushed([process.stdout, process.stderr]).then(() => process.exit(code));
  });

  const onSignal = (signal: NodeJS.Signals): void => {
    const forcing = supervisor.phase === 'stopping';
    logs.event('signal', forcing ? `${signal} again: killing workers` : `${signal}: stopping gracefully (again to force)`, { signal });
    supervisor.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // Signals only enqueue operations; refusals (one already running) are logged, not fatal.
  const operations = new Operations(supervisor);
  const operate = (what: string, run: () => Promise<unknown>): void => {
    if (supervisor.phase !== 'running') return;
    run().then(
      () => logs.event('operation', `${what} done`, { operation: what }),
      (error: unknown) => logs.event('operation-failed', `${what} failed: ${(error as Error).message}`, { operation: what }, 'error'),
    );
  };
  process.on('SIGHUP', () =>
    operate('reload', () => operations.reload({ onProgress: (progress) => logs.event('reload', progress.message, { ...progress }) })),
  );
  process.on('SIGTTIN', () => operate('scale +1', () => operations.scale('+1')));
  process.on('SIGTTOU', () => operate('scale -1', () => operations.scale('-1')));
  supervisor.start();
}

/** Resolves once everything written so far to the streams is with the OS, or after `limitMs` (a reader that never reads). */
function flushed(streams: NodeJS.WritableStream[], limitMs = 10_000): Promise<unknown> {
  const written = streams.map((stream) => new Promise((resolve) => stream.write('', resolve)));
  return Promise.race([Promise.all(written), pause(limitMs, undefined, { ref: false })]);
}
