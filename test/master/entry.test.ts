// Issue 2, point 2: `clusterd start <entry>` runs CommonJS, ESM and TypeScript entries unchanged;
// every worker gets CLUSTERD_WORKER_ID (1..N, reused by a replacement) and CLUSTERD_CLUSTER_NAME;
// args after `--` reach the app; the default worker count is one per usable CPU (affinity and cgroup quota).
import test from 'ava';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { usableCpus } from '../../src/system/cpus.js';
import { fixture, get, isRunning, killOnTeardown, launch, startCluster, waitFor, type Cluster, type OutputLine } from '../helpers/cluster.js';

/** What the entry-* fixtures answer. */
interface EntryAnswer {
  kind: string;
  cjs?: boolean;
  worker: string;
  name: string;
  pid: number;
  argv: string[];
}

interface ReadyWorker {
  id: number;
  pid: number;
}

const readyWorkers = (cluster: Cluster): ReadyWorker[] =>
  cluster.lines.find((line) => line.event === 'ready')!.workers as ReadyWorker[];

/** Asks (a new connection each time) until every worker answered; returns the answers by worker id. */
async function answersFromEveryWorker<T extends { worker: string | number }>(cluster: Cluster, count: number): Promise<Map<string, T>> {
  const answers = new Map<string, T>();
  await waitFor(
    async () => {
      const answer = JSON.parse((await get(cluster.port)).body) as T;
      answers.set(String(answer.worker), answer);
      return answers.size >= count;
    },
    { what: `answers from ${count} workers` },
  );
  return answers;
}

// Leading zeros and spaces must survive the trip: args are strings, not numbers.
const APP_ARGS = ['--port-name', '007', 'two words', '-x'];

const runsUnchanged = test.macro({
  async exec(t, file: string, kind: string, name: string) {
    const cluster = await startCluster(fixture(file), { instances: 2, appArgs: APP_ARGS });
    killOnTeardown(t, cluster.process);
    t.deepEqual(
      readyWorkers(cluster).map((worker) => worker.id),
      [1, 2],
    );
    const answers = await answersFromEveryWorker<EntryAnswer>(cluster, 2);
    t.deepEqual([...answers.keys()].sort(), ['1', '2']);
    for (const [id, answer] of answers) {
      t.is(answer.kind, kind);
      t.is(answer.name, name);
      t.deepEqual(answer.argv, APP_ARGS);
      t.is(answer.pid, readyWorkers(cluster).find((worker) => String(worker.id) === id)!.pid);
    }
    // A .cts file is CommonJS after compilation (`module` exists), as tsc would emit it.
    if (kind === 'cts') t.true(answers.get('1')!.cjs);
    t.is(await cluster.stop(), 0);
  },
  title: (_title, file: string, kind: string) => `${kind} entry ${file} runs unchanged on 2 workers with ids, name and app args`,
});

test(runsUnchanged, 'entry-cjs.cjs', 'cjs', 'entry-cjs');
test(runsUnchanged, 'entry-cjs-no-type/server.js', 'cjs', 'server');
test(runsUnchanged, 'entry-esm.mjs', 'esm', 'entry-esm');
test(runsUnchanged, 'entry-ts.ts', 'ts', 'entry-ts');
test(runsUnchanged, 'entry-mts.mts', 'mts', 'entry-mts');
test(runsUnchanged, 'entry-cts.cts', 'cts', 'entry-cts');

test('a directory as the entry runs as `node DIR` would: its package.json "main", else its index file; the cluster is named after the package, else the directory', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'clusterd-entry-dir-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const withMain = join(root, 'api');
  mkdirSync(join(withMain, 'src'), { recursive: true });
  writeFileSync(join(withMain, 'package.json'), JSON.stringify({ name: '@acme/orders', main: 'src/server' }));
  copyFileSync(fixture('hello.js'), join(withMain, 'src', 'server.mjs'));
  const indexOnly = join(root, 'web');
  mkdirSync(indexOnly);
  copyFileSync(fixture('hello.js'), join(indexOnly, 'index.mjs'));
  for (const [dir, name] of [
    [withMain, 'orders'],
    [indexOnly, 'web'],
  ] as const) {
    const cluster = await startCluster(dir, { instances: 1 });
    t.teardown(() => cluster.stop('SIGKILL'));
    t.like(cluster.lines.find((line) => line.event === 'ready'), { name });
    t.is((await get(cluster.port)).status, 200);
  }
});

test('--name overrides the cluster name derived from the entry', async (t) => {
  const cluster = await startCluster(fixture('entry-esm.mjs'), { instances: 2, flags: ['--name', 'shop.api_2'] });
  killOnTeardown(t, cluster.process);
  t.is(cluster.lines.find((line) => line.event === 'ready')!.name, 'shop.api_2');
  const answers = await answersFromEveryWorker<EntryAnswer>(cluster, 2);
  t.deepEqual(
    [...answers.values()].map((answer) => answer.name),
    ['shop.api_2', 'shop.api_2'],
  );
  t.is(await cluster.stop(), 0);
});

const instanceCount = test.macro({
  async exec(t, flags: string[]) {
    const master = launch(['start', fixture('hello.js'), ...flags, '--log-format', 'json']);
    killOnTeardown(t, master.process);
    const ready: OutputLine = await master.waitForLine((line) => line.event === 'ready');
    const workers = ready.workers as ReadyWorker[];
    const expected = usableCpus().cpus;
    t.is(workers.length, expected);
    t.deepEqual(
      workers.map((worker) => worker.id),
      Array.from({ length: expected }, (_, index) => index + 1),
    );
    master.process.kill('SIGTERM');
    t.is(await master.exited, 0);
  },
  title: (_title, flags: string[]) => `${flags.length === 0 ? 'no -i' : flags.join(' ')} starts one worker per usable CPU`,
});
test(instanceCount, []);
test(instanceCount, ['-i', 'max']);

test('a replacement worker reuses the id of the worker it replaces', async (t) => {
  const cluster = await startCluster(fixture('hello.js'), { instances: 2 });
  killOnTeardown(t, cluster.process);
  const [first, second] = readyWorkers(cluster);
  process.kill(second!.pid, 'SIGKILL');

  const exit = await cluster.waitForLine((line) => line.event === 'worker-exit');
  t.is(exit.worker, second!.id);
  const replacement = (await waitFor(
    async () => {
      const answer = JSON.parse((await get(cluster.port)).body) as { worker: number; pid: number };
      return answer.pid !== first!.pid && answer.pid !== second!.pid ? answer : null;
    },
    { what: 'an answer from a replacement worker' },
  ))!;
  t.is(replacement.worker, second!.id);
  t.false(isRunning(second!.pid));
  // The other worker was left alone: still running, and still the only other id.
  t.true(isRunning(first!.pid));
  const answers = await answersFromEveryWorker<{ worker: number; pid: number }>(cluster, 2);
  t.deepEqual(
    [...answers.values()].map((answer) => [answer.worker, answer.pid]).sort(),
    [
      [first!.id, first!.pid],
      [second!.id, replacement.pid],
    ],
  );
  t.is(cluster.lines.filter((line) => line.event === 'worker-exit').length, 1);
  t.is(await cluster.stop(), 0);
});

test("the master's tokens from its environment do not reach the app's environment", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-env-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const entry = join(dir, 'app.js');
  writeFileSync(entry, "require('node:http').createServer((q, r) => r.end(JSON.stringify(Object.keys(process.env).filter((k) => k.startsWith('CLUSTERD_') || k === 'APP_TOKEN')))).listen(0, '127.0.0.1');\n");
  const cluster = await startCluster(entry, {
    instances: 1,
    flags: ['--control', '127.0.0.1:0', '--dashboard', '127.0.0.1:0'],
    env: { CLUSTERD_CONTROL_TOKEN: 'control-secret', CLUSTERD_DASHBOARD_TOKEN: 'dashboard-secret', APP_TOKEN: 'the app may have its own' },
  });
  t.teardown(() => cluster.stop('SIGKILL'));
  const names = JSON.parse((await get(cluster.port)).body) as string[];
  t.false(names.includes('CLUSTERD_CONTROL_TOKEN'), names.join());
  t.false(names.includes('CLUSTERD_DASHBOARD_TOKEN'), names.join());
  t.true(names.includes('APP_TOKEN'));
  t.is(await cluster.stop(), 0);
});
