import test from 'ava';
import { fixture, get, startCluster, waitFor } from './helpers/cluster.js';

test('two workers answer on one port and stop with exit code 0', async (t) => {
  const cluster = await startCluster(fixture('hello.js'));
  t.is(cluster.pids.length, 2);
  // Which worker takes a new connection is the kernel's choice under the default `fair` (both accept
  // from one queue): ask until both have answered, a bounded number of times.
  const seen = new Set<number>();
  let asked = 0;
  await waitFor(
    async () => {
      asked++;
      seen.add((JSON.parse((await get(cluster.port)).body) as { pid: number }).pid);
      return seen.size === 2 || asked >= 200;
    },
    { intervalMs: 1, what: 'both workers answering' },
  );
  t.deepEqual([...seen].sort(), [...cluster.pids].sort(), `${asked} requests`);
  t.is(await cluster.stop('SIGINT'), 0);
});
