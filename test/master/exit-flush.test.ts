// A stopped master waits for the readers of its stdout and stderr to take what is queued, but not
// for one that stopped reading: that one kept the master 10 s after its workers were gone, past the
// window `clusterd stop` gives it (exit 10 although the workers had stopped in time), and what was
// queued for it went with the exit, uncounted.
import test from 'ava';
import { execa } from 'execa';
import { createInterface } from 'node:readline';
import { EXIT_FLUSH_LIMIT_MS, EXIT_FLUSH_STALL_MS, flushBeforeExit, type ExitStream } from '../../src/master/exit-flush.js';
import { STOP_MARGIN_MS } from '../../src/cli/stop.js';
import { SHUTDOWN_GRACE_MS } from '../../src/control/server.js';
import { OUTPUT_AFTER_EXIT_MS } from '../../src/master/worker-output.js';
import { CLI, fixture, get, killOnTeardown, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

/** A stream whose reader takes `perLook` bytes each time it is asked (0: a reader that stopped). */
class Reader implements ExitStream {
  readonly #callbacks: (() => void)[] = [];
  constructor(
    public writableLength: number,
    readonly perLook: number,
  ) {}

  write(_chunk: string, callback: () => void): void {
    this.#callbacks.push(callback);
  }

  /** The reader takes its share; once all is taken the write callbacks run, as Node's do. */
  read(): void {
    this.writableLength = Math.max(0, this.writableLength - this.perLook);
    if (this.writableLength === 0) for (const callback of this.#callbacks.splice(0)) callback();
  }
}

test('the flush waits within the margin `clusterd stop` gives a master after --grace', (t) => {
  t.true(EXIT_FLUSH_STALL_MS <= EXIT_FLUSH_LIMIT_MS);
  // The master's waits after --grace come one after another: a worker's last output, the control
  // server's calls, then this flush (6 s in all against the 5 s margin, when the flush had 3 s).
  t.true(OUTPUT_AFTER_EXIT_MS + SHUTDOWN_GRACE_MS + EXIT_FLUSH_LIMIT_MS < STOP_MARGIN_MS);
});

test('flushBeforeExit: a reader that reads gets everything; one that stopped is given up, with what it did not take', async (t) => {
  const reading = new Reader(10_000, 1_000);
  const stopped = new Reader(5_000, 0);
  const timer = setInterval(() => (reading.read(), stopped.read()), 5);
  t.teardown(() => clearInterval(timer));
  const left = await flushBeforeExit({ stdout: reading, stderr: stopped }, { stallMs: 200, limitMs: 60_000 });
  t.deepEqual([...left], [
    ['stdout', 0],
    ['stderr', 5_000],
  ]);
});

test('a master whose stdout nobody reads: `clusterd stop` exits 0 once the workers stopped, and what the reader missed is said on stderr', async (t) => {
  const ctl = control(t);
  const name = 'unread-stdout';
  // stdout a pipe this test never reads from: once the pipe is full the master queues (8 MiB), then drops.
  const master = execa(process.execPath, [CLI, 'start', fixture('floods-stdout.js'), '-i', '1', '--name', name, '--grace', '1s'], {
    env: ctl.env,
    reject: false,
    buffer: false,
    stdin: 'ignore',
  });
  killOnTeardown(t, master);
  master.stdout!.pause();
  const stderr: string[] = [];
  createInterface({ input: master.stderr! }).on('line', (line) => stderr.push(line));
  const status = await waitFor(async () => {
    const result = await ctl.run(['status', name, '--json']);
    const answer = result.exitCode === 0 && (JSON.parse(String(result.stdout)) as { addresses: string[]; totals: { ready: number } });
    return answer && answer.totals.ready === 1 && answer;
  }, { what: 'the cluster to be ready', timeoutMs: 20_000 });
  const port = Number(status.addresses[0]!.split(':').pop());

  // 12 MB of lines: more than the pipe and the master's queue hold.
  t.is((await get(port, '/flood?lines=12000', { timeoutMs: 60_000 })).body, '12000');
  const stop = await ctl.run(['stop', name]);
  t.is(stop.exitCode, 0, String(stop.stderr));
  t.is((await master).exitCode, 0);
  const said = stderr.filter((line) => line.includes('queued for') && line.includes('not written'));
  t.is(said.length, 1, stderr.join('\n'));
  t.regex(said[0]!, /^clusterd: (\d+ lines for stdout dropped and [\d.]+ [KM]iB queued for it|[\d.]+ [KM]iB queued for stdout) not written: its reader stopped reading/);
});
