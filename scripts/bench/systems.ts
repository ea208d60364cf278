// The systems under test. All run scripts/bench/apps/server.cjs on 127.0.0.1:<port> with the same
// worker count; each knows how to start itself, when it is ready, which pid is its master, and how
// to stop. clusterd's balance modes are read from `clusterd start --help`, so a mode joins the
// benchmark as soon as the CLI offers it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Pm2Install } from './install.js';
import { isAlive, portAccepts, spawnTracked, stopTracked, waitFor, type Tracked } from './processes.js';

export interface Paths {
  root: string;
  cache: string;
  node: string;
  app: string;
  primary: string;
  clusterd: string;
  pm2Home: string;
}

/**
 * Where everything lives, from the checkout's root. The PM2 home is this run's own (`pm2-home-<pid>`):
 * with one shared home a second run in the checkout killed the first one's daemon (stale.ts reaps
 * those of runs that are gone).
 */
export function benchPaths(root: string): Paths {
  const cache = path.join(root, '.bench-cache');
  return {
    root,
    cache,
    node: process.execPath,
    app: path.join(root, 'scripts', 'bench', 'apps', 'server.cjs'),
    primary: path.join(root, 'scripts', 'bench', 'apps', 'cluster-primary.cjs'),
    clusterd: path.join(root, 'bin', 'clusterd.js'),
    pm2Home: path.join(cache, `pm2-home-${process.pid}`),
  };
}

export interface StartContext {
  port: number;
  workers: number;
  /** Extra node flags for every worker (node:cluster and clusterd only): `npm run bench:profile`'s --cpu-prof. */
  workerNodeArgs?: string[];
  /** Fresh, empty folder where the app's processes keep their request counts. */
  countDir: string;
  /** Extra environment for the app's processes: (e)'s BENCH_BLOCK_MS. */
  appEnv?: Record<string, string>;
  /** Unique per start, for names that must not collide with a cluster still shutting down. */
  runId: number;
}

export interface RunningSystem {
  /** The process that balances or supervises (not serving requests itself); undefined for one process. */
  masterPid: number | undefined;
  stop(): Promise<void>;
}

export interface SystemSpec {
  id: string;
  label: string;
  group: 'baseline' | 'pm2' | 'clusterd';
  /** The clusterd balance mode, for clusterd systems. */
  mode?: string;
  /** How many processes serve requests when started with `workers`. */
  serving(workers: number): number;
  /** Run only when named in --systems (a control, not a contender). */
  optIn?: boolean;
  start(context: StartContext): Promise<RunningSystem>;
}

/** A start that failed for a reason worth printing in the results (a mode not implemented yet...). */
export class StartError extends Error {
  override name = 'StartError';
}

const READY_TIMEOUT_MS = 30_000;

/** Workers whose count file exists in `countDir`, i.e. that listen. */
export interface Count {
  pid: number;
  served: number;
  connections: number;
}

export function countFiles(countDir: string): Count[] {
  const counts: Count[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(countDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new Error(`the count folder ${path.basename(countDir)} is gone (removed by another process?)`);
  }
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    try {
      counts.push(JSON.parse(fs.readFileSync(path.join(countDir, name), 'utf8')) as Count);
    } catch {
      // renamed into place atomically, so only a file of a process from before could be odd; skip it
    }
  }
  return counts;
}

async function waitReady(context: StartContext, expected: number, alive: () => boolean, why: () => string): Promise<void> {
  await waitFor(
    async () => {
      if (!alive()) throw new StartError(why());
      return countFiles(context.countDir).length >= expected && (await portAccepts(context.port));
    },
    READY_TIMEOUT_MS,
    `not ready after ${READY_TIMEOUT_MS / 1000} s (${countFiles(context.countDir).length}/${expected} workers listening)`,
  );
}

/** The last meaningful line a failed process printed: a JSON log's message, or plain text. */
function failureLine(tracked: Tracked): string {
  const lines = tracked
    .tail()
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  for (const line of [...lines].reverse()) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { level?: string; message?: string };
      if (entry.level === 'error' && entry.message) return entry.message;
    } catch {
      // not JSON after all
    }
  }
  const text = lines.filter((line) => !line.startsWith('{'));
  return `exited with ${tracked.child.exitCode ?? tracked.child.signalCode}: ${text.at(-1) ?? lines.at(-1) ?? 'no output'}`;
}

async function startSpawned(
  context: StartContext,
  command: { args: string[]; env?: Record<string, string> },
  { node, expected, masterPid }: { node: string; expected: number; masterPid: (tracked: Tracked) => number | undefined },
): Promise<RunningSystem> {
  const tracked = spawnTracked(node, command.args, {
    env: { ...process.env, ...context.appEnv, ...command.env, BENCH_PORT: String(context.port), BENCH_COUNT_DIR: context.countDir },
  });
  try {
    await waitReady(context, expected, () => !tracked.hasExited(), () => failureLine(tracked));
  } catch (error) {
    await stopTracked(tracked, 2_000);
    throw error;
  }
  return { masterPid: masterPid(tracked), stop: () => stopTracked(tracked) };
}

/** clusterd's balance modes and its default one, as its CLI lists them for `start --balance`. */
export function clusterdModes(paths: Paths): { modes: string[]; defaultMode: string; note?: string } {
  try {
    const help = execFileSync(paths.node, [paths.clusterd, 'start', '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '400' } });
    return parseBalanceHelp(help);
  } catch (error) {
    return { modes: [], defaultMode: 'rr', note: `clusterd start --help failed: ${String(error).split('\n')[0]}` };
  }
}

/**
 * The --balance choices and default from `clusterd start --help` (yargs prints
 * `[choices: "rr", "least"] [default: "rr"]`, or `[default: rr]`, after the description). The targets are checked on the
 * default mode, whichever the CLI names: rr today, another mode once it becomes the default.
 */
export function parseBalanceHelp(help: string): { modes: string[]; defaultMode: string; note?: string } {
  // The default is quoted when yargs prints a default value, bare when it prints a defaultDescription
  // (as clusterd does since its options come from one table: a flag left out must not hide the config file).
  const option = /--balance[\s\S]*?\[choices: ([^\]]+)\](?:\s*\[default: "?([^"\]]+)"?\])?/.exec(help);
  const choices = option?.[1];
  if (!choices) return { modes: ['rr'], defaultMode: 'rr', note: 'could not read the --balance choices from `clusterd start --help`; trying rr only' };
  const modes = [...choices.matchAll(/"([^"]+)"/g)].map((match) => match[1] ?? '').filter(Boolean);
  const named = option[2];
  if (named && modes.includes(named)) return { modes, defaultMode: named };
  return { modes, defaultMode: 'rr', note: `could not read the --balance default from \`clusterd start --help\`; taking rr as the default mode` };
}

/** Every system, in a fixed order (rounds rotate it). */
export function allSystems({ paths, pm2, modes }: { paths: Paths; pm2: Pm2Install | undefined; modes: string[] }): SystemSpec[] {
  const { node } = paths;
  const systems: SystemSpec[] = [
    {
      id: 'single',
      label: 'node, one process',
      group: 'baseline',
      serving: () => 1,
      start: (context) => startSpawned(context, { args: [paths.app] }, { node, expected: 1, masterPid: () => undefined }),
    },
  ];
  // `cluster-rr-again` is node:cluster rr a second time, as another system in the same rounds: the
  // ratio of the same thing to itself, which is how far this machine moves a median of the rounds.
  for (const [id, policy, label, optIn] of [
    ['cluster-rr', 'rr', 'node:cluster rr', false],
    ['cluster-none', 'none', 'node:cluster SCHED_NONE', false],
    ['cluster-rr-again', 'rr', 'node:cluster rr, again (control)', true],
  ] as const) {
    systems.push({
      id,
      label,
      group: 'baseline',
      optIn,
      serving: (workers) => workers,
      start: (context) =>
        startSpawned(
          context,
          {
            args: [paths.primary],
            env: {
              NODE_CLUSTER_SCHED_POLICY: policy,
              BENCH_WORKERS: String(context.workers),
              ...(context.workerNodeArgs ? { BENCH_WORKER_NODE_ARGS: JSON.stringify(context.workerNodeArgs) } : {}),
            },
          },
          { node, expected: context.workers, masterPid: (tracked) => tracked.pid },
        ),
    });
  }
  if (pm2) {
    systems.push({
      id: 'pm2',
      label: `PM2 ${pm2.version} cluster`,
      group: 'pm2',
      serving: (workers) => workers,
      start: (context) => startPm2(context, paths, pm2),
    });
  }
  for (const mode of modes) systems.push(clusterdSystem(paths, mode, true));
  if (modes.includes('rr')) systems.push(clusterdSystem(paths, 'rr', false));
  // Every mode with its instruments off (no loop stats, no blocked-loop captures, no watchdog),
  // only when named: what they cost under each workload, in the same rounds.
  for (const mode of modes) systems.push({ ...bareClusterdSystem(paths, mode), optIn: true });
  return systems;
}

/** clusterd in one mode with its instruments off: no loop stats, no blocked-loop captures, no watchdog. */
export function bareClusterdSystem(paths: Paths, mode: string): SystemSpec {
  const bare = clusterdSystem(paths, mode, false, ['--report-blocked', '0', '--watchdog', '0']);
  return { ...bare, id: `clusterd-${mode}-bare`, label: `clusterd ${mode}, instruments off` };
}

/** clusterd in one balance mode; `stats: false` passes --stats-interval 0; `extra` are more `start` flags. */
export function clusterdSystem(paths: Paths, mode: string, stats: boolean, extra: readonly string[] = []): SystemSpec {
  return {
    id: stats ? `clusterd-${mode}` : `clusterd-${mode}-nostats`,
    label: stats ? `clusterd ${mode}` : `clusterd ${mode}, stats off`,
    group: 'clusterd',
    mode,
    serving: (workers) => workers,
    start: (context) => {
      const args = [paths.clusterd, 'start', paths.app, '-i', String(context.workers), '--balance', mode];
      args.push('--name', `bench-${process.pid}-${context.runId}`, '--log-format', 'json', '--grace', '5s');
      if (!stats) args.push('--stats-interval', '0');
      args.push(...extra);
      for (const arg of context.workerNodeArgs ?? []) args.push(`--node-arg=${arg}`);
      return startSpawned(context, { args }, { node: paths.node, expected: context.workers, masterPid: readyMasterPid }).catch((error: Error) => {
        throw error instanceof StartError ? new StartError(`clusterd start --balance ${mode}: ${error.message}`) : error;
      });
    },
  };
}

/** The master pid from clusterd's ready line, else the process we started (the CLI is the master). */
function readyMasterPid(tracked: Tracked): number {
  for (const line of tracked.tail().split('\n')) {
    if (!line.includes('"event":"ready"')) continue;
    try {
      const pid = (JSON.parse(line) as { masterPid?: number }).masterPid;
      if (pid) return pid;
    } catch {
      // fall through
    }
  }
  return tracked.pid;
}

function pm2Env(paths: Paths): NodeJS.ProcessEnv {
  // PM2_HOME inside the cache: never the user's ~/.pm2.
  return { ...process.env, PM2_HOME: paths.pm2Home };
}

/** `pm2 kill` for the cache's PM2_HOME, then SIGKILL the daemon if it is still there. Synchronous: exit hooks use it. */
export function killPm2(paths: Paths, pm2: Pm2Install): void {
  const pidFile = path.join(paths.pm2Home, 'pm2.pid');
  const daemon = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8')) : undefined;
  if (daemon === undefined && !fs.existsSync(path.join(paths.pm2Home, 'rpc.sock'))) return;
  try {
    execFileSync(paths.node, [pm2.bin, 'kill'], { env: pm2Env(paths), stdio: 'ignore', timeout: 20_000 });
  } catch {
    // fall back to the signal below
  }
  if (daemon && isAlive(daemon)) {
    try {
      process.kill(daemon, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

async function startPm2(context: StartContext, paths: Paths, pm2: Pm2Install): Promise<RunningSystem> {
  fs.mkdirSync(paths.pm2Home, { recursive: true });
  const env = { ...pm2Env(paths), ...context.appEnv, BENCH_PORT: String(context.port), BENCH_COUNT_DIR: context.countDir };
  const pidFile = path.join(paths.pm2Home, 'pm2.pid');
  // Without its count folder the workers are not known; killing the daemon stops them all the same.
  const servers = () => {
    try {
      return countFiles(context.countDir).map((count) => count.pid);
    } catch {
      return [];
    }
  };
  const stop = async () => {
    const workers = servers();
    killPm2(paths, pm2);
    // Cluster workers exit when their daemon's IPC channel closes; make sure of it.
    await waitFor(() => workers.every((pid) => !isAlive(pid)), 10_000, 'PM2 workers still alive').catch(() => {
      for (const pid of workers) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    });
  };
  // The CLI starts the daemon (if needed) and the app, then exits; the daemon outlives it.
  const cli = spawnTracked(paths.node, [pm2.bin, 'start', paths.app, '-i', String(context.workers), '--name', 'bench'], { env });
  await cli.exited;
  const daemon = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8')) : undefined;
  try {
    if (cli.child.exitCode !== 0 || !daemon) throw new StartError(`pm2 start failed: ${failureLine(cli)}`);
    await waitReady(context, context.workers, () => isAlive(daemon), () => 'the PM2 daemon died');
  } catch (error) {
    await stop();
    throw error;
  }
  return { masterPid: daemon, stop };
}
