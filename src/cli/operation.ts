// What reload and restart share: print each step as it streams, then the outcome; on failure the
// one `clusterd: ...` line, followed by the failed worker's last output, indented.
import { fail } from './fail.js';
import type { ProgressView } from '../control/types.js';
import { BootError, oneLine } from '../errors.js';

/**
 * Runs a streamed operation, printing its steps (text, or one JSON object per line). An old worker
 * killed at --grace rather than drained is said on stderr as the master logged it (and in `killed`
 * with --json). The operation is done all the same, and exits 0: an app that keeps WebSockets open
 * past --grace would fail every deploy script's reload otherwise.
 */
export async function printOperation(json: boolean, what: string, start: (onProgress: (progress: ProgressView) => void) => Promise<ProgressView>): Promise<void> {
  const write = (progress: ProgressView): void => {
    process.stdout.write(`${json ? JSON.stringify(progress) : progress.message}\n`);
    if (!progress.killed) return;
    process.stderr.write(`clusterd: ${progress.killed.message}\n`);
  };
  // The step that failed the operation is what its error says (`the cluster is stopping`, or the
  // reload's `... failed after 0 of 2 workers: <that step>`), on stderr: as text it was said twice.
  // So a failed step waits for what comes next, and is left out when the error repeats it.
  let failed = null as ProgressView | null;
  const print = (progress: ProgressView): void => {
    if (failed) write(failed);
    failed = null;
    if (!json && progress.phase === 'failed') failed = progress;
    else write(progress);
  };
  // Ctrl-C stops this client, not the operation: say so rather than leave the user guessing.
  const onSignal = (): void => {
    process.stderr.write(`clusterd: stopped following the ${what}; it goes on in the master (see clusterd status)\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  try {
    print(await start(print));
  } catch (error) {
    const message = (error as Error | null)?.message ?? '';
    if (failed && message !== failed.message && !message.endsWith(`: ${failed.message}`)) write(failed);
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
  }
}

/** fail(), plus a failed boot's last output under the error line. */
export function failOperation(error: unknown): never {
  if (error instanceof BootError && error.lastOutput.length > 0) {
    const output = error.lastOutput.map((line) => `    ${line}`).join('\n');
    process.stderr.write(`clusterd: ${oneLine(error)}\n${output}\n`);
    process.exit(error.exitCode);
  }
  fail(error);
}
