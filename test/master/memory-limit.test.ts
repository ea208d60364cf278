// Issue 4's memory proof: a leaking worker is replaced by a drained restart, no request fails.
import test from 'ava';
import http from 'node:http';
import { fixture, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';
import { loadLoop } from '../helpers/requests.js';

test('a worker over --max-memory is replaced, successor first, without a failed request', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('leaky.js'), {
    instances: 2,
    flags: ['--name', 'leaky', '--max-memory', '150M', '--stats-interval', '250ms', '--metrics', '127.0.0.1:0'],
    // One worker leaks: the other, had it leaked too, could pass the limit while the test reads the
    // counts (2 replacements where one is counted), as it did on a loaded machine.
    env: { ...ctl.env, LEAK_WORKER: '1' },
  });
  t.teardown(() => cluster.stop('SIGKILL'));

  // Keep-alive traffic that leaks on every request, until a worker has been replaced.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => agent.destroy());
  const failures: string[] = [];
  let ok = 0;
  let replaced = false;
  const restarted = cluster.waitForLine((line) => line.event === 'memory-restarted', 60_000).then((line) => {
    replaced = true;
    return line;
  });
  const client = async (): Promise<void> => {
    while (!replaced) {
      await new Promise<void>((resolve) => {
        const request = http.get({ host: '127.0.0.1', port: cluster.port, path: '/leak', agent }, (response) => {
          response.resume();
          response.on('end', () => {
            if (response.statusCode === 200) ok++;
            else failures.push(`status ${response.statusCode}`);
            resolve();
          });
        });
        request.on('error', (error) => {
          failures.push(error.message);
          resolve();
        });
      });
    }
  };
  const clients = Promise.all([client(), client(), client(), client()]);
  const event = await restarted;
  await clients;
  t.log(`${ok} requests before the replacement; ${event.message}`);

  const limitLine = cluster.lines.find((line) => line.event === 'memory-limit');
  t.truthy(limitLine);
  t.true((limitLine!.rss as number) > 150 * 1024 * 1024);
  t.deepEqual(failures, []);
  t.true(ok > 0);
  const workers = await ctl.workers('leaky');
  const id = event.worker as unknown as number;
  t.true(workers.some((worker) => worker.id === id && worker.pid === (event.pid as number) && worker.state === 'ready'));
  t.false(workers.some((worker) => worker.pid === limitLine!.pid));

  // Counted as a memory replacement, not as a restart (it was counted nowhere): in status and /metrics.
  const status = JSON.parse(String((await ctl.run(['status', 'leaky', '--json'])).stdout)) as {
    workers: Array<{ id: number; restarts: number; memoryReplacements: number }>;
    totals: { restarts: number; memoryReplacements: number };
  };
  t.like(status.workers.find((worker) => worker.id === id), { restarts: 0, memoryReplacements: 1 });
  t.like(status.totals, { restarts: 0, memoryReplacements: 1 });
  const metrics = await (await fetch(String(cluster.lines.find((line) => line.event === 'ready')!.metrics))).text();
  t.true(metrics.includes(`clusterd_worker_memory_replacements_total{worker="${id}"} 1\n`), metrics);
  t.true(metrics.includes('clusterd_master_memory_replacements_total 1\n'), metrics);
  t.true(metrics.includes('clusterd_master_restarts_total 0\n'), metrics);
});

test('a --max-memory below what a fresh worker needs replaces once, says so, and stops replacing', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', 'tight', '--max-memory', '16M', '--stats-interval', '100ms'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const restarted = await cluster.waitForLine((line) => line.event === 'memory-restarted', 30_000);
  const tooLow = await cluster.waitForLine((line) => line.event === 'memory-limit-too-low', 30_000);
  t.is(tooLow.pid, restarted.pid);
  t.regex(tooLow.message, /from its start.*raise --max-memory/);
  // Its successor serves on, over the limit through some 40 samples (4 s at 100 ms), and is not replaced.
  const successor = restarted.pid as number;
  await waitFor(
    async () => {
      const status = await ctl.run(['status', 'tight', '--json']);
      const worker = (JSON.parse(String(status.stdout)) as { workers: { pid: number; uptimeMs: number }[] }).workers[0];
      return worker?.pid === successor && worker.uptimeMs >= 4000;
    },
    { what: 'the successor up for 4 s', timeoutMs: 30_000 },
  );
  t.is(cluster.lines.filter((line) => line.event === 'memory-restarted').length, 1);
  t.is((await ctl.workers('tight'))[0]!.pid, successor);
});

test('a replacement that leaks past --max-memory before its first sample is replaced in turn, not left running', async (t) => {
  // Under traffic, the successor passes 100M within a second, before its first sample (2 s): it was
  // taken for one "over the limit from its start" and left running for good. Its start-up RSS (a
  // fresh worker: about 50 MiB) is under the limit, so it is replaced like any other.
  const cluster = await startCluster(fixture('leaks-to-cap.js'), { instances: 1, flags: ['--name', 'leaks-fast', '--max-memory', '100M', '--stats-interval', '2s'] });
  t.teardown(() => cluster.stop('SIGKILL'));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => agent.destroy());
  const load = loadLoop(cluster.port, { concurrency: 4, agent });
  t.teardown(() => load.stop());

  const first = await cluster.waitForLine((line) => line.event === 'memory-restarted', 60_000);
  const successor = first.pid as number;
  const verdict = await cluster.waitForLine((line) => line.pid === successor && (line.event === 'memory-limit' || line.event === 'memory-limit-too-low'), 60_000);
  await load.stop();
  t.is(verdict.event, 'memory-limit', verdict.message);
  t.true((verdict.rss as number) > 100 * 1024 * 1024);
  await cluster.waitForLine((line) => line.event === 'memory-restarted' && line.pid !== successor, 60_000);
  t.false(cluster.lines.some((line) => line.event === 'memory-limit-too-low'));
});
