// An id's sample-based series move to its replacement once it is ready, without a gap: until the
// replacement's first sample they carry the last one of the worker it replaced. They vanished for
// up to a stats interval after each replacement, and the status totals dipped with them.
import test from 'ava';
import { fixture, killOnTeardown, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';
import { scrape } from '../helpers/requests.js';

const RSS = (id: number): string => `clusterd_worker_memory_rss_bytes{worker="${id}"}`;
const LAG = (id: number): string => `clusterd_worker_event_loop_lag_p99_seconds{worker="${id}"}`;


test('a scrape during a reload finds every id\'s sample series, and status totals keep the RSS of a replacement yet to sample', async (t) => {
  const ctl = control(t);
  const name = 'handover';
  // A long interval: a replacement is ready, and the reload done, well before its first sample (the
  // totals check below needs one yet to sample: with 4 s, a slow reload let both sample and skipped it).
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--name', name, '--metrics', '127.0.0.1:0', '--stats-interval', '10s'], env: ctl.env });
  killOnTeardown(t, cluster.process);
  const url = cluster.lines.find((line) => line.event === 'ready')!.metrics as string;
  await waitFor(async () => {
    const samples = await scrape(url);
    return samples.has(RSS(1)) && samples.has(RSS(2));
  }, { timeoutMs: 25_000, what: 'both workers\' first samples' });

  const reload = ctl.run(['reload', name]);
  let done = false;
  void reload.finally(() => (done = true));
  const missing: string[] = [];
  let scrapes = 0;
  while (!done) {
    const samples = await scrape(url);
    scrapes++;
    for (const key of [RSS(1), RSS(2), LAG(1), LAG(2)]) if (!samples.has(key)) missing.push(key);
  }
  t.is((await reload).exitCode, 0);
  t.true(scrapes > 1);
  t.deepEqual([...new Set(missing)], []);

  // Reloaded: the old workers have exited, and the new ones have not sampled yet (10 s).
  const status = JSON.parse(String((await ctl.run(['status', name, '--json'])).stdout)) as { workers: { rss: number | null }[]; totals: { rss: number } };
  const known = status.workers.reduce((sum, worker) => sum + (worker.rss ?? 0), 0);
  t.true(status.workers.some((worker) => worker.rss === null), `a replacement yet to sample: ${JSON.stringify(status.workers)}`);
  t.true(status.totals.rss > known, 'the totals count the RSS of the workers replaced');
  const after = await scrape(url);
  t.true(after.has(RSS(1)) && after.has(RSS(2)));
  await cluster.stop();
});
