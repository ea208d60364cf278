import test from 'ava';
import { fixture, get, startCluster } from './helpers/cluster.js';

test('two workers answer on one port and stop with exit code 0', async (t) => {
  const cluster = await startCluster(fixture('hello.js'));
  t.is(cluster.pids.length, 2);
  const seen = new Set<number>();
  for (let i = 0; i < 4; i++) seen.add((JSON.parse((await get(cluster.port)).body) as { pid: number }).pid);
  t.deepEqual([...seen].sort(), [...cluster.pids].sort());
  t.is(await cluster.stop('SIGINT'), 0);
});
