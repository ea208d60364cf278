// Issue 2, point 7: worker output reaches the master's output whole, prefixed, never split,
// interleaved or lost, including the last lines before a crash.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ExitCode } from '../../src/exit-codes.js';
import { CLI, fixture, launch, startCluster, waitFor } from '../helpers/cluster.js';

const pad = (text: string): string => `${text} ${'x'.repeat(200 - text.length - 1)}`;

/** What worker `id` of spew-and-crash.js writes on each stream before it throws, line by line. */
function expected(id: number): { stdout: string[]; stderr: string[] } {
  const stdout = Array.from({ length: 2000 }, (_, i) => pad(`w${id} out ${i}`));
  stdout.push(`w${id} long ${'L'.repeat(100_000)}`, `w${id} last stdout line`, `w${id} partial stdout, no newline`);
  const stderr = Array.from({ length: 500 }, (_, i) => pad(`w${id} err ${i}`));
  stderr.push(`w${id} last stderr line`);
  return { stdout, stderr };
}

/** deepEqual without printing 1 MB of diff: names the first line that differs. */
function sameLines(t: ExecutionContext, actual: string[], wanted: string[], what: string): void {
  const index = wanted.findIndex((line, i) => actual[i] !== line);
  const show = (line: string | undefined): string => (line === undefined ? '(none)' : `${line.slice(0, 80)}... (${line.length} chars)`);
  if (index === -1 && actual.length === wanted.length) {
    t.pass();
    return;
  }
  const at = index === -1 ? wanted.length : index;
  t.fail(`${what}: ${actual.length} lines, wanted ${wanted.length}; line ${at} is ${show(actual[at])}, wanted ${show(wanted[at])}`);
}

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-logs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('text: every line whole and once, prefixed [wN], stdout to stdout and stderr to stderr, up to the crash', async (t) => {
  const cluster = launch(['start', fixture('spew-and-crash.js'), '-i', '2', '--', tempDir(t)]);
  t.teardown(() => {
    if (cluster.process.exitCode === null) cluster.process.kill('SIGKILL');
  });
  await cluster.waitForLine((line) => / ready on .* with 2 workers/.test(line.message), 30_000);
  cluster.process.kill('SIGTERM');
  t.is(await cluster.exited, 0);
  const stdout = cluster.lines.map((line) => line.message);
  // The two pipes are read independently: wait for stderr to catch up.
  await waitFor(() => [1, 2].every((id) => cluster.stderr.includes(`[w${id}] w${id} last stderr line`)), { what: 'the last stderr lines' });

  for (const id of [1, 2]) {
    const want = expected(id);
    const own = (lines: string[]): string[] =>
      lines.filter((line) => line.startsWith(`[w${id}] w${id} `)).map((line) => line.slice(`[w${id}] `.length));
    sameLines(t, own(stdout), want.stdout, `worker ${id} stdout`);
    sameLines(t, own(cluster.stderr), want.stderr, `worker ${id} stderr`);
    t.true(cluster.stderr.includes(`[w${id}] Error: w${id} boom`), `worker ${id}'s crash reached stderr`);
  }
  const stray = [...stdout, ...cluster.stderr].filter((line) => !/^(\[w[12]\] |clusterd: )/.test(line));
  t.deepEqual(stray, [], 'every line is prefixed');
});

test('json: one object per line with time, worker, pid, stream and message, up to the crash', async (t) => {
  const cluster = await startCluster(fixture('spew-and-crash.js'), { appArgs: [tempDir(t)], readyTimeoutMs: 30_000 });
  t.teardown(() => cluster.stop());
  t.false(cluster.lines.some((line) => line.event === 'non-json'), 'every line is JSON');
  for (const id of [1, 2]) {
    const want = expected(id);
    const own = cluster.lines.filter((line) => line.worker === id && line.message.startsWith(`w${id} `));
    for (const stream of ['stdout', 'stderr'] as const) {
      sameLines(
        t,
        own.filter((line) => line.stream === stream).map((line) => line.message),
        want[stream],
        `worker ${id} ${stream}`,
      );
    }
    const crashed = new Set(own.map((line) => line.pid));
    t.is(crashed.size, 1, 'one process wrote them');
    t.false(cluster.pids.includes([...crashed][0]!), 'the crashed worker, not its replacement');
    t.deepEqual(Object.keys(own[0]!).sort(), ['message', 'pid', 'stream', 'time', 'worker']);
    t.false(Number.isNaN(Date.parse(own[0]!.time)));
    t.true(cluster.lines.some((line) => line.worker === id && line.stream === 'stderr' && line.message === `Error: w${id} boom`));
  }
});

test('a master that gives up still delivers every line to a reader that lags', async (t) => {
  const child = spawn(process.execPath, [CLI, 'start', fixture('spew-and-crash.js'), '-i', '1', '--max-boot-failures', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own runtime directory: other tests may run a cluster of the same name at once.
    env: { ...process.env, CLUSTERD_RUNTIME_DIR: tempDir(t) },
  });
  const exited = once(child, 'exit');
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const stderr: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => stderr.push(line));
  // Read nothing of stdout until the master said on stderr that it gives up: by then its stdout
  // pipe is full and the rest of the worker's lines wait in the master, which is about to exit.
  await waitFor(() => stderr.some((line) => line.startsWith('clusterd: error: ')), { what: 'the fatal line', timeoutMs: 30_000 });
  const stdout: string[] = [];
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => stdout.push(line));
  await Promise.all([exited, once(lines, 'close')]);
  t.is(child.exitCode, ExitCode.BOOT_FAILED);
  const own = stdout.filter((line) => line.startsWith('[w1] w1 ')).map((line) => line.slice('[w1] '.length));
  sameLines(t, own, expected(1).stdout, 'worker 1 stdout');
});
