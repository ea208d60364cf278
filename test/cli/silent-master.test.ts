// A cluster whose master holds its control socket but does not answer (stopped with SIGSTOP, its
// loop blocked) is still a cluster: the nameless commands, connect() and `stop --all` count it
// rather than act on "the only one" left and say nothing of it.
import test from 'ava';
import { connect } from '../../src/control/discovery.js';
import { ClusterdError } from '../../src/errors.js';
import { ExitCode } from '../../src/exit-codes.js';
import { fixture, isAlive, startCluster, type Cluster } from '../helpers/cluster.js';
import { control, type Control } from '../helpers/control.js';

/** Clusters a, b and c in one runtime directory, b's master stopped with SIGSTOP (continued at teardown). */
async function withSilentB(t: Parameters<typeof control>[0]): Promise<{ ctl: Control; clusters: Record<string, Cluster> }> {
  const ctl = control(t);
  const started = await Promise.all(['a', 'b', 'c'].map((name) => startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', name], env: ctl.env })));
  for (const cluster of started) t.teardown(() => cluster.stop('SIGKILL'));
  const [a, b, c] = started as [Cluster, Cluster, Cluster];
  process.kill(b.masterPid, 'SIGSTOP');
  // Always, or a failed assertion leaves a stopped master behind (SIGKILL ends it all the same).
  t.teardown(() => {
    if (isAlive(b.masterPid)) process.kill(b.masterPid, 'SIGCONT');
  });
  return { ctl, clusters: { a, b, c } };
}

test('with one master silent, a command without a name counts it: two clusters, name one (exit 2); connect() too', async (t) => {
  const { ctl, clusters } = await withSilentB(t);
  await clusters.c!.stop('SIGTERM');
  for (const command of [['status'], ['stop']]) {
    const result = await ctl.run(command);
    t.is(result.exitCode, ExitCode.USAGE, `${command.join(' ')}: ${String(result.stderr)}`);
    t.is(String(result.stderr), 'clusterd: 2 clusters are running (a, b: its master did not answer): name the one you mean');
  }
  t.true(isAlive(clusters.a!.masterPid), 'a was left running');
  const error = await t.throwsAsync(connect({ dir: ctl.env.CLUSTERD_RUNTIME_DIR }), { instanceOf: ClusterdError });
  t.is(error?.code, 'ERR_CLUSTERD_AMBIGUOUS');

  await clusters.a!.stop('SIGTERM');
  const alone = await ctl.run(['status']);
  t.is(alone.exitCode, ExitCode.NOT_FOUND);
  t.is(String(alone.stderr), 'clusterd: the only cluster, b: its master holds the control socket but did not answer (stopped, or its event loop blocked?)');
});

test('stop --all with one master silent: the others stop, a line says which did not, exit 7', async (t) => {
  const { ctl, clusters } = await withSilentB(t);
  const result = await ctl.run(['stop', '--all']);
  t.is(result.exitCode, ExitCode.NOT_FOUND, String(result.stderr));
  t.deepEqual(String(result.stdout).split('\n').map((line) => line.replace(/\d+/g, 'N')), ['stopped cluster a (master pid N)', 'stopped cluster c (master pid N)']);
  t.regex(String(result.stderr), /^clusterd: .*b\.sock did not answer in time$/);
  t.deepEqual(await Promise.all([clusters.a!.exited, clusters.c!.exited]), [0, 0]);
  t.true(isAlive(clusters.b!.masterPid));
});
