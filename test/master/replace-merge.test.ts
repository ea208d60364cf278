// Issue 11: one owner of the worker set. A memory-limit replacement and a reload that want the same
// worker replaced merge into one replacement, whichever comes first: the reload exits 0, every
// worker ends on the new generation, and the memory limit is met on the way.
import test from 'ava';
import { execa } from 'execa';
import { createInterface } from 'node:readline';
import { CLI, fixture, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

const FLAGS = ['--max-memory', '150M', '--stats-interval', '200ms', '--listen-timeout', '20s'];

/** `clusterd reload NAME`, with each progress line it prints handed to onLine as it comes. */
function reload(env: Record<string, string>, name: string, onLine: (line: string) => void) {
  const child = execa(process.execPath, [CLI, 'reload', name], { env, reject: false, buffer: { stdout: false } });
  createInterface({ input: child.stdout! }).on('line', onLine);
  return child;
}

test('a worker over --max-memory during a reload is replaced once, by the reload, which exits 0', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('slow-boot-leaks-on-signal.js'), { instances: 2, flags: ['--name', 'merge1', ...FLAGS], env: ctl.env, readyTimeoutMs: 30_000 });
  t.teardown(() => cluster.stop('SIGKILL'));
  const before = await ctl.workers('merge1');
  const second = before.find((worker) => worker.id === 2)!;

  let startedFirst = false;
  const running = reload(ctl.env, 'merge1', (line) => {
    if (/worker 1: starting generation 2/.test(line)) startedFirst = true;
  });
  // While the reload boots worker 1's successor, worker 2 (still generation 1) goes over the limit.
  await waitFor(() => startedFirst, { what: 'the reload to start on worker 1', timeoutMs: 30_000 });
  process.kill(second.pid, 'SIGUSR2');
  await cluster.waitForLine((line) => line.event === 'memory-limit' && line.worker === 2, 30_000);

  const result = await running;
  t.is(result.exitCode, 0, String(result.stderr));
  const after = await ctl.workers('merge1');
  t.deepEqual(after.map((worker) => worker.generation), [2, 2]);
  t.false(after.some((worker) => worker.pid === second.pid));
  t.false(cluster.lines.some((line) => line.event === 'memory-restart-failed'));
});

test('a reload that starts during a memory-limit replacement joins it and exits 0', async (t) => {
  const ctl = control(t);
  // Booting 4 s: the reload's CLI comes well within the memory replacement's boot, even on a loaded box.
  const cluster = await startCluster(fixture('slow-boot-leaks-on-signal.js'), { instances: 2, flags: ['--name', 'merge2', ...FLAGS], env: { ...ctl.env, BOOT_MS: '4000' }, readyTimeoutMs: 30_000 });
  t.teardown(() => cluster.stop('SIGKILL'));
  const first = (await ctl.workers('merge2')).find((worker) => worker.id === 1)!;
  process.kill(first.pid, 'SIGUSR2');
  await cluster.waitForLine((line) => line.event === 'memory-limit' && line.worker === 1, 30_000);

  const printed: string[] = [];
  const result = await reload(ctl.env, 'merge2', (line) => printed.push(line));
  t.is(result.exitCode, 0, String(result.stderr));
  const after = await ctl.workers('merge2');
  t.deepEqual(after.map((worker) => worker.generation), [2, 2]);
  t.false(after.some((worker) => worker.pid === first.pid));
  const restarted = await cluster.waitForLine((line) => line.event === 'memory-restarted' && line.worker === 1, 30_000);
  t.false(cluster.lines.some((line) => line.event === 'memory-restart-failed'));
  // Worker 1 is replaced once: the memory replacement booting generation 1 is called off for the
  // reload's generation 2, which meets both. The reload printed one start for it, of generation 2 (it
  // printed the memory replacement's, then replaced that one again), and the memory limit's line names
  // the worker that serves now (it named the reload's second one).
  const starts = printed.filter((line) => /^worker 1: starting/.test(line));
  t.is(starts.length, 1, printed.join('\n'));
  t.regex(starts[0]!, /^worker 1: starting generation 2 \(pid \d+\)$/);
  const now = after.find((worker) => worker.id === 1)!.pid;
  t.is(starts[0], `worker 1: starting generation 2 (pid ${now})`);
  t.is(restarted.pid, now);
  t.is(cluster.lines.filter((line) => line.event === 'replacement-superseded' && line.worker === 1).length, 1);
});
