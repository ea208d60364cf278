// clusterd scale: what it prints while it waits.
import test from 'ava';
import { fixture, startCluster } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

test('scale down that waits for a worker that ignores SIGTERM says on stderr which one it waits for; --json keeps stdout JSON', async (t) => {
  // It waited the whole --grace in silence.
  const ctl = control(t);
  const cluster = await startCluster(fixture('shutdown-app.js'), { instances: 2, flags: ['--name', 'scalewaits', '--grace', '8s'], env: { ...ctl.env, ON_SIGNAL: 'log' } });
  t.teardown(() => cluster.stop('SIGKILL'));
  const scale = await ctl.run(['scale', 'scalewaits', '1', '--json']);
  t.is(scale.exitCode, 0, String(scale.stderr));
  t.deepEqual(JSON.parse(String(scale.stdout)), { name: 'scalewaits', workers: 1 });
  t.is(String(scale.stderr), 'clusterd: waiting for worker 2 to drain (killed once --grace is over)');
});
