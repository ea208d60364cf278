// An address the workers listened on stays bound while a replacement starts (clients queue), but one
// that the replacement does not listen on again is released once it has been ready for
// --listen-timeout: forged listens kept 1,023 ports bound for good after their worker was gone.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, get, isRunning, startCluster, tryConnect, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

test("an address a crashed worker's replacement does not listen on is released once it is ready; the one it listens on stays bound throughout", async (t) => {
  const ctl = control(t);
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-extra-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cluster = await startCluster(fixture('extra-port-once.js'), {
    instances: 1,
    flags: ['--name', 'extra', '--listen-timeout', '1s'],
    env: { ...ctl.env, FIRST_FLAG: join(dir, 'first') },
  });
  t.teardown(() => cluster.stop('SIGKILL'));
  const extraLine = await cluster.waitForLine((line) => line.message.startsWith('extra listening on '));
  const extra = Number(extraLine.message.split(' ').pop());
  const addresses = async (): Promise<string[]> => {
    const status = await ctl.run(['status', 'extra', '--json']);
    return (JSON.parse(String(status.stdout)) as { addresses: string[] }).addresses;
  };
  t.deepEqual((await addresses()).sort(), [`127.0.0.1:${cluster.port}`, `127.0.0.1:${extra}`].sort());
  t.is((await get(extra)).status, 200);

  await t.throwsAsync(get(cluster.port, '/crash'));
  await cluster.waitForLine((line) => line.event === 'worker-exit');
  // While the replacement starts, both are still bound: clients queue.
  t.is(await tryConnect(cluster.port), 'connected');
  const replacement = await waitFor(
    async () => {
      const workers = await ctl.workers('extra');
      return workers.length === 1 && workers[0]!.pid !== cluster.pids[0] && workers[0]!.state === 'ready' ? workers[0]! : null;
    },
    { what: 'the replacement ready' },
  );
  const released = await cluster.waitForLine((line) => line.event === 'listen-released');
  t.like(released, { count: 1, addresses: [`127.0.0.1:${extra}`] });
  t.is(await tryConnect(extra), 'ECONNREFUSED');
  t.deepEqual(await addresses(), [`127.0.0.1:${cluster.port}`]);
  t.is(JSON.parse((await get(cluster.port)).body).pid, replacement.pid);
  t.is(cluster.lines.filter((line) => line.event === 'listen-released').length, 1, 'said once');
  t.true(isRunning(cluster.masterPid));
});
