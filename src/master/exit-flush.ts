// The master's last wait before it exits: every worker's output has reached its stdout and stderr,
// but Node still queues what a lagging pipe reader has not taken (up to MAX_UNWRITTEN_BYTES: logs.ts),
// and process.exit() drops it. A reader that is slow but reading gets it; one that stopped reading
// (`clusterd start app.js | sleep 40`, a stalled log shipper) never will, and waiting on it kept a
// stopped cluster's master alive 10 s, past the window `clusterd stop` gives it (exit 10).

/**
 * How long the reader may take nothing before the master gives up on it. The master's waits after
 * --grace follow one another (an exited worker's last output, up to OUTPUT_AFTER_EXIT_MS; the control
 * server's unary calls, SHUTDOWN_GRACE_MS; then this flush): together they stay inside the
 * STOP_MARGIN_MS that `clusterd stop` allows after --grace (src/cli/stop.ts; test/master/exit-flush.test.ts).
 */
export const EXIT_FLUSH_STALL_MS = 1_000;
/** The longest the master waits, even on a reader that keeps reading. */
export const EXIT_FLUSH_LIMIT_MS = 1_500;
const POLL_MS = 50;

/** A stream of the master's own output: process.stdout or process.stderr. */
export interface ExitStream {
  write(chunk: string, callback: () => void): unknown;
  readonly writableLength: number;
}

/**
 * Resolves once everything written so far to `streams` is with the OS, or once their readers took
 * nothing for `stallMs`, or after `limitMs`; with the bytes each stream still holds (0: all written).
 */
export async function flushBeforeExit<Name extends string>(
  streams: Partial<Record<Name, ExitStream>>,
  { stallMs = EXIT_FLUSH_STALL_MS, limitMs = EXIT_FLUSH_LIMIT_MS } = {},
): Promise<Map<Name, number>> {
  const entries = Object.entries(streams) as [Name, ExitStream][];
  const written = Promise.all(entries.map(([, stream]) => new Promise<void>((resolve) => stream.write('', () => resolve()))));
  const queued = (): number => entries.reduce((sum, [, stream]) => sum + stream.writableLength, 0);
  const started = Date.now();
  let least = queued();
  let progressed = started;
  let poll: NodeJS.Timeout | undefined;
  const givenUp = new Promise<void>((resolve) => {
    poll = setInterval(() => {
      const now = Date.now();
      // Progress is the queue getting shorter: what the reader took since the last look.
      const left = queued();
      if (left < least) {
        least = left;
        progressed = now;
      }
      if (now - progressed >= stallMs || now - started >= limitMs) resolve();
    }, POLL_MS);
  });
  await Promise.race([written, givenUp]);
  clearInterval(poll);
  return new Map(entries.map(([name, stream]) => [name, stream.writableLength]));
}
