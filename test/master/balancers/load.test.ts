// Issue 2, "Tests": a load test bounded in time. 64 connections for 3 s against two workers, in
// fair (the default) and rr: each serves a share (20-80%: see below) and no request fails.
import test from 'ava';
import autocannon from 'autocannon';
import { fixture, startCluster } from '../../helpers/cluster.js';
import { getJson, untilEveryWorker, type Answer } from '../../helpers/requests.js';

for (const mode of ['fair', 'rr']) {
  test(`${mode}, 64 connections for 3 s: every worker serves 20-80% and no request fails`, async (t) => {
    const cluster = await startCluster(fixture('count-requests.js'), { flags: ['--balance', mode] });
    t.teardown(() => cluster.stop());
    // Each connection reconnects every 50 requests: both balance connections, so the share is
    // decided by some thousand connections instead of the first 64.
    const result = await autocannon({ url: `http://127.0.0.1:${cluster.port}/`, connections: 64, duration: 3, reconnectRate: 50 });
    t.log(`${result['2xx']} answers, ${result.requests.sent} sent, ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`);
    t.is(result.errors, 0);
    t.is(result.timeouts, 0);
    t.is(result.non2xx, 0);
    t.is(result.resets, 0);
    t.true(result['2xx'] > 0);

    const counts = await untilEveryWorker(() => getJson<Answer & { count: number; connections: number }>(cluster.port, '/count'), cluster.pids, {
      what: 'counts',
    });
    const served = [...counts.values()].map(({ pid, count, connections }) => ({ pid, count, connections }));
    const total = served.reduce((sum, { count }) => sum + count, 0);
    t.log(`served: ${served.map(({ pid, count, connections }) => `${pid}: ${count} (${((100 * count) / total).toFixed(1)}%) over ${connections} connections`).join(', ')}`);
    // Every answer autocannon counted was served by one of the workers, and they served no request
    // autocannon did not send (some are served without being counted: the last one of each
    // connection before it reconnects, and those in flight when autocannon stops).
    t.true(total >= result['2xx'] && total <= result.requests.sent, `${total} served, ${result['2xx']} answered, ${result.requests.sent} sent`);
    // Requests, not connections: on keep-alive connections a worker that gets more of the 2 cores
    // (beside autocannon, which runs in this test's process, and the other test files) serves more,
    // whatever the balancer did. rr reached 68.9% once in CI with 30-70%, so 20-80%: this only shows
    // that both workers take a real part of the load (a balancer that sends nearly everything to one
    // worker fails it); the even split of connections is asserted tightly by the burst tests
    // (fair.test.ts), which count connections, not requests.
    for (const { pid, count } of served) {
      const share = count / total;
      t.true(share >= 0.2 && share <= 0.8, `worker ${pid} served ${(100 * share).toFixed(1)}%`);
    }
  });
}
