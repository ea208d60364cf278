// How every command ends on an expected failure: one line, its exit code (a module of its own, so
// that the commands and main.ts, which loads them, import it without a cycle).
import { ClusterdError, oneLine } from '../errors.js';
import { ExitCode } from '../exit-codes.js';

/** Prints the one line a user sees for an expected failure and exits with its code. */
export function fail(error: unknown): never {
  if (error instanceof ClusterdError) {
    process.stderr.write(`clusterd: ${oneLine(error)}\n`);
    if (process.env.CLUSTERD_DEBUG) process.stderr.write(`${error.stack}\n`);
    process.exit(error.exitCode);
  }
  process.stderr.write(`clusterd: internal error: ${oneLine(error)} (set CLUSTERD_DEBUG=1 for details)\n`);
  if (process.env.CLUSTERD_DEBUG) process.stderr.write(`${(error as Error)?.stack ?? error}\n`);
  process.exit(ExitCode.INTERNAL);
}
