// Issue 4, point 6: operations naming an unknown cluster or worker, impossible counts and bad
// sizes each get one clear line and a non-zero exit, and the running cluster is left untouched.
import test from 'ava';
import { fixture, startCluster } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';
import { ExitCode } from '../../src/exit-codes.js';

test('bad operations: one line, non-zero exit, the cluster untouched', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--name', 'steady'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const before = await ctl.workers('steady');

  const cases: [string[], number, RegExp][] = [
    [['reload', 'nope'], ExitCode.NOT_FOUND, /no cluster named nope/],
    [['scale', 'nope', '3'], ExitCode.NOT_FOUND, /no cluster named nope/],
    [['restart', 'nope', '1'], ExitCode.NOT_FOUND, /no cluster named nope/],
    [['stack', 'nope', '1'], ExitCode.NOT_FOUND, /no cluster named nope/],
    [['stop', 'nope'], ExitCode.NOT_FOUND, /no cluster named nope/],
    [['restart', 'steady', '9'], ExitCode.NOT_FOUND, /worker 9.*1, 2/],
    [['stack', 'steady', '9'], ExitCode.NOT_FOUND, /worker 9/],
    [['scale', 'steady', '0'], ExitCode.USAGE, /at least one worker/],
    [['scale', 'steady', '-5'], ExitCode.USAGE, /at least one worker/],
    [['scale', 'steady', 'lots'], ExitCode.USAGE, /`lots`/],
  ];
  for (const [args, code, message] of cases) {
    const result = await ctl.run(args);
    const lines = String(result.stderr).trim().split('\n');
    t.is(result.exitCode, code, `${args.join(' ')}: ${String(result.stderr)}`);
    t.is(lines.length, 1, `${args.join(' ')}: ${String(result.stderr)}`);
    t.regex(lines[0]!, /^clusterd: /);
    t.regex(lines[0]!, message, args.join(' '));
  }

  const start = await ctl.run(['start', fixture('hello.js'), '--max-memory', '12Q']);
  t.is(start.exitCode, ExitCode.USAGE);
  t.is(String(start.stderr).trim(), 'clusterd: Expected `--max-memory` to be a size such as 512M or 1G, got `12Q`');

  const after = await ctl.workers('steady');
  t.deepEqual(
    after.map((worker) => [worker.id, worker.pid, worker.generation, worker.state]),
    before.map((worker) => [worker.id, worker.pid, worker.generation, worker.state]),
  );
});
