// A worker's exit in words, for logs and error lines: how it ended, and the line of its output that
// says why (lastErrorLine); whether a stop went as it should, and whether node refused its flags.
import { isMasterNote } from './logs.js';
import type { WorkerExit, WorkerProcess } from './worker.js';
import { firstLine } from '../errors.js';
import type { StackFrame } from '../loop/types.js';

/**
 * Whether a blocked stack is a write to a stream that blocks: the worker's stdout or stderr (clusterd
 * makes them blocking, so that no line is lost), when the master reads them slower than the app writes.
 */
export function writingOutput(stack: readonly StackFrame[]): boolean {
  return stack.slice(0, 8).some((frame) => frame.url === 'node:internal/stream_base_commons' && /^(writeGeneric|writevGeneric|afterWriteDispatched)$/.test(frame.functionName));
}

/**
 * A stopping worker ended as it should: exit 0, or by the kill signal itself, which libraries raise
 * again once their shutdown is done (@godaddy/terminus and NestJS remove their listener, then
 * process.kill(process.pid, signal), so that the process dies the way it was asked to).
 */
export function stoppedCleanly(exit: WorkerExit, killSignal: NodeJS.Signals): boolean {
  return exit.code === 0 || exit.signal === killSignal;
}

/**
 * `exited with code 1 before it was ready: Error: boom` (`while stopping` for a worker that was
 * stopping; `could not be started: spawn EAGAIN ...` when fork failed), for logs and error lines.
 */
export function describeExit(exit: WorkerExit, worker: WorkerProcess): string {
  if (exit.error !== undefined) return `could not be started: ${exit.error}`;
  const how = closedItsChannel(exit) ? 'closed its IPC channel (process.disconnect())' : exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  const when = exit.from === 'starting' ? ' before it was ready' : exit.from === 'stopping' ? ' while stopping' : '';
  const last = lastErrorLine(exitOutput(exit, worker));
  return `${how}${when}${last ? `: ${last}` : ''}`;
}

/**
 * The app closed the worker's channel, and the runtime ended the worker for it: with a SIGKILL to its
 * own group (not a kill from outside), or exit 0 where it leads none (src/worker/preload.ts). Only
 * that exit: the 'disconnecting' message that says so can be sent by the app itself, and an exit 1
 * after it is the app's failure, not a closed channel.
 */
function closedItsChannel(exit: WorkerExit): boolean {
  return exit.closedChannel === true && !exit.killed && (exit.signal === 'SIGKILL' || exit.code === 0);
}

/**
 * How long before a serving worker's exit what it wrote to stderr may explain it: an uncaught
 * exception's stack, or the app's last words before process.exit(), come within a few milliseconds.
 */
export const EXIT_OUTPUT_MS = 2000;

/**
 * What the worker wrote to stderr that may say why it exited: all it wrote while booting (the boot is
 * what failed) or since it was asked to stop, but of a serving worker only the last EXIT_OUTPUT_MS.
 * Its tail spans its whole life: an error the app logged and handled minutes before was quoted as the
 * cause of a SIGKILL from the out-of-memory killer. Nothing the app wrote explains a SIGKILL (it
 * cannot see it coming; an operator, the out-of-memory killer or the master sent it), only the
 * master's own note.
 */
function exitOutput(exit: WorkerExit, worker: WorkerProcess): string[] {
  if (exit.signal === 'SIGKILL') return worker.stderrTail.lines().filter(isMasterNote);
  if (exit.from === 'starting') return worker.stderrTail.lines();
  const since = exit.from === 'stopping' && worker.stoppingAt !== null ? worker.stoppingAt : (worker.exitedAt ?? Date.now()) - EXIT_OUTPUT_MS;
  return worker.stderrTail.since(since);
}

/**
 * What node said when it refused its command line (exit code 9, Node's "Invalid Argument":
 * `node: bad option: --x`, `node: --require requires an argument`), or null.
 */
export function nodeRefusedFlags(exit: WorkerExit, tail: readonly string[]): string | null {
  if (exit.code !== 9) return null;
  for (const line of tail) {
    const match = /^\S*node: (bad option: \S+|\S+ requires an argument)$/.exec(line.trim());
    if (match) return match[1]!;
  }
  return null;
}

/**
 * The line that says what went wrong (`TypeError: ...`), from what the worker wrote last. An error's
 * stack ends its report, and what Node or the app adds after it (the error's properties, Node's
 * `Node.js v20.20.2`) is no report of its own: a line of the app's after the last stack is its last
 * word (`fatal: lost the database` before process.exit), and an error before it is an old one (logged
 * and handled) only if nothing else came since. The master's own note (it killed the worker) is why,
 * whatever the app wrote after it.
 */
export function lastErrorLine(tail: readonly string[]): string {
  const note = tail.findLast(isMasterNote);
  if (note !== undefined) return note;
  const after = tail.slice(tail.findLastIndex((line) => /^\s+at /.test(line)) + 1);
  const said = after.findLastIndex((line) => !afterReport(line));
  if (said !== -1) {
    // Unless it only finishes an error's announcement (esbuild's `Transform failed with 1 error:`).
    const announced = said > 0 && isErrorLine(after[said - 1]!) && after[said - 1]!.trim().endsWith(':');
    return firstLine(after, announced ? said - 1 : said);
  }
  const lines = tail.map((line) => line.trim()).filter(Boolean);
  const at = lines.findLastIndex(isErrorLine);
  // Node's closing `Node.js v20.20.2` says nothing of what went wrong.
  return at === -1 ? (lines.findLast((line) => !/^Node\.js v\d/.test(line)) ?? lines.at(-1) ?? '') : firstLine(lines, at);
}

/** `Error: boom`, `TypeError: x is not a function`. */
function isErrorLine(line: string): boolean {
  return /^(\w*Error|Error)\b.*:/.test(line.trim());
}

/**
 * What follows an error's stack without being a report of its own: its properties (`  code: 'X'`,
 * the closing `}`), blank lines, Node's closing `Node.js v20.20.2` and its `(Use \`node --trace-...`
 * hint.
 */
function afterReport(line: string): boolean {
  return line.trim() === '' || /^\s/.test(line) || /^[}\]]/.test(line) || /^Node\.js v\d/.test(line) || /^\(Use `node --trace-/.test(line);
}
