// `clusterd start -d`: the command line is checked here, then a detached master is started
// whose output goes to <runtime dir>/<name>.log (or --log-file). This process waits until every worker is
// ready (exit 0, naming the cluster and its control socket) or the master fails (non-zero,
// with the reason), so scripts can rely on the exit code.
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DAEMON_ENV, MAX_REPORT_LINE } from './daemon.js';
import { masterEnvironment } from '../system/node-options.js';
import { addressesText, endpointsText, workerCount, type ReadyInfo } from '../master/run.js';
import { ensureRuntimeDir } from '../control/paths.js';
import { assertNameFree } from '../control/server.js';
import { ClusterdError, printable } from '../errors.js';
import { openLogFile, type LogFileOptions } from '../master/log-file.js';
import { ExitCode } from '../exit-codes.js';
import { MAX_ADDRESSES } from '../master/listeners.js';

/** What the daemon master tells the process that started it. */
export type DaemonReport =
  | { type: 'ready'; info: ReadyInfo }
  | { type: 'fatal'; message: string; lastOutput: string[]; exitCode: number; code?: string | undefined }
  /** A warning the master logged before it was ready: said on stderr, and the wait goes on. */
  | { type: 'warning'; message: string };

const line = z.string().max(MAX_REPORT_LINE);
const daemonReport = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('ready'),
    info: z.object({
      name: line,
      // The addresses the master binds (at most MAX_ADDRESSES) and those workers bind by themselves (as many).
      addresses: z.array(line).max(2 * MAX_ADDRESSES),
      exclusive: z.array(z.object({ address: line, worker: z.number().int().min(1) })).max(MAX_ADDRESSES),
      workers: z.array(z.object({ id: z.number().int().min(1), pid: z.number().int().min(1) })).max(1024),
      masterPid: z.number().int().min(1),
      controlSocket: line,
      control: line.nullable(),
      metrics: line.nullable(),
      health: line.nullable(),
      dashboard: line.nullable(),
    }),
  }),
  z.object({ type: z.literal('fatal'), message: line, lastOutput: z.array(line).max(1000), exitCode: z.number().int().min(0).max(255), code: z.string().max(64).optional() }),
  z.object({ type: z.literal('warning'), message: line }),
]) satisfies z.ZodType<DaemonReport>;

/** The daemon master's report, checked (the IPC channel is a process boundary); null for anything else. */
export function parseDaemonReport(raw: unknown): DaemonReport | null {
  const result = daemonReport.safeParse(raw);
  return result.success ? result.data : null;
}

/** The log file of a daemon cluster. */
export function daemonLogPath(name: string): string {
  return join(ensureRuntimeDir(), `${name}.log`);
}

/** Starts the master detached and resolves with the exit code this CLI should use. */
export async function startDaemon({ name, argv, logFile }: { name: string; argv: readonly string[]; logFile?: Pick<LogFileOptions, 'path' | 'given'> | null | undefined }): Promise<number> {
  // Refused here, before the new master would append its complaint to the running one's log.
  await assertNameFree(name);
  // The master's own stdio goes to the file its lines go to: with --log-file, a crash's stack or a
  // Node warning lands there too, not in a second file nobody was told of.
  const logPath = logFile?.path ?? daemonLogPath(name);
  let log: number;
  try {
    // --log-file's checks (no symlink, this user's regular file): it may be in a shared directory.
    log = logFile ? openLogFile(logFile) : openSync(logPath, 'a', 0o600);
  } catch (error) {
    if (logFile) throw error;
    throw new ClusterdError('ERR_CLUSTERD_RUNTIME_DIR', `cannot open the log file ${logPath}: ${(error as Error).message}`, { cause: error });
  }
  // The file is appended to, run after run: what this master writes starts here.
  const ownFrom = fstatSync(log).size;
  const bin = fileURLToPath(new URL('../../bin/clusterd.js', import.meta.url));
  const child = spawn(process.execPath, [bin, ...withoutDaemonFlag(argv)], {
    detached: true,
    stdio: ['ignore', log, log, 'ipc'],
    env: { ...masterEnvironment(process.env), [DAEMON_ENV]: '1' },
  });
  closeSync(log);
  return new Promise((resolve) => {
    let settled = false;
    const done = (code: number): void => {
      if (settled) return;
      settled = true;
      process.off('SIGINT', onInterrupt);
      child.removeAllListeners();
      if (child.connected) child.disconnect();
      child.unref();
      resolve(code);
    };
    // Ctrl-C stops the waiting, not the master (detached, it never sees the terminal's signal): it
    // boots on, so say so and how to stop it, rather than leave a cluster the user thinks is gone.
    // 130, as a shell says of a command Ctrl-C ended.
    const onInterrupt = (): void => {
      process.stderr.write(`clusterd: stopped waiting; ${name} is still starting in the background (master pid ${child.pid}, log ${logPath}); \`clusterd stop ${name}\` stops it\n`);
      done(130);
    };
    process.once('SIGINT', onInterrupt);
    child.on('message', (raw: unknown) => {
      const report = parseDaemonReport(raw);
      // Not the master's report (an app started in this process's place, say): keep waiting for one, or for the exit.
      if (!report) return;
      if (report.type === 'warning') {
        process.stderr.write(`clusterd: ${printable(report.message)}\n`);
        return;
      }
      if (report.type === 'ready') {
        const { info } = report;
        process.stdout.write(
          // Where the app listens (a socket path of its choosing) and what its master says: escaped, never raw to the terminal.
          `clusterd: ${info.name} started in the background: master pid ${info.masterPid}, ${workerCount(info)} on ${printable(addressesText(info))}${endpointsText(info)}\n` +
            `clusterd: control socket ${info.controlSocket}; logs ${logPath}\n`,
        );
        done(ExitCode.OK);
      } else {
        process.stderr.write(`clusterd: ${printable(report.message)}\n`);
        for (const line of report.lastOutput) process.stderr.write(`  | ${printable(line)}\n`);
        // The master is stopping its workers; its exit code is the same.
        done(report.exitCode);
      }
    });
    child.once('error', (error) => {
      process.stderr.write(`clusterd: cannot start the master: ${error.message}\n`);
      done(ExitCode.INTERNAL);
    });
    child.once('exit', (code, signal) => {
      const tail = lastLines(logPath, 5, ownFrom);
      process.stderr.write(`clusterd: the master ${signal ? `was killed by ${signal}` : `exited with code ${code}`} before it was ready; see ${logPath}\n`);
      for (const line of tail) process.stderr.write(`  | ${printable(line)}\n`);
      done(code && code > 0 ? code : ExitCode.INTERNAL);
    });
  });
}

/**
 * The command line again, minus -d/--daemon and its value (never touching the app's arguments after
 * `--`). yargs reads a `true` or `false` after a yes/no flag as its value (`-d true`): left behind
 * alone, it reached the master as a second entry, which failed in the background ("Unknown
 * argument: true") after start had said nothing was wrong.
 */
export function withoutDaemonFlag(argv: readonly string[]): string[] {
  const end = argv.indexOf('--');
  const own = end === -1 ? argv : argv.slice(0, end);
  const rest = end === -1 ? [] : argv.slice(end);
  const kept: string[] = [];
  for (let index = 0; index < own.length; index++) {
    const arg = own[index]!;
    if (/^(-d|--daemon)=(true|false)$/.test(arg)) continue;
    if (arg === '-d' || arg === '--daemon') {
      if (own[index + 1] === 'true' || own[index + 1] === 'false') index++;
      continue;
    }
    kept.push(arg);
  }
  return [...kept, ...rest];
}

/** The last `count` lines written from byte `from` on: an earlier run's lines, above them in the file, are not this master's. */
function lastLines(path: string, count: number, from: number): string[] {
  try {
    const bytes = readFileSync(path);
    // Smaller than it was (rotated or emptied since): all of it is this run's.
    const text = (bytes.length >= from ? bytes.subarray(from) : bytes).toString('utf8').trimEnd();
    return text === '' ? [] : text.split('\n').slice(-count);
  } catch {
    return [];
  }
}
