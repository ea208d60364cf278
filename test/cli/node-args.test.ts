// --node-arg is repeatable: every flag reaches every worker's node, before clusterd's runtime.
import test from 'ava';
import { fixture, startCluster } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

test('repeated --node-arg flags all reach the workers', async (t) => {
  const cluster = await startCluster(fixture('prints-exec-argv.js'), {
    instances: 1,
    flags: ['--node-arg=--max-old-space-size=321', '--node-arg=--stack-size=900'],
  });
  t.teardown(() => cluster.stop('SIGKILL'));
  const line = await cluster.waitForLine((candidate) => candidate.worker === 1 && candidate.message.startsWith('execArgv '));
  const execArgv = JSON.parse(line.message.slice('execArgv '.length)) as string[];
  t.true(execArgv.includes('--max-old-space-size=321'), execArgv.join(' '));
  t.true(execArgv.includes('--stack-size=900'), execArgv.join(' '));
});

test('--node-arg=--inspect with two workers: each worker\'s inspector on a port of its own, and stack works on both', async (t) => {
  // A bare --inspect kept 127.0.0.1:9229 for every worker: the second logged "address already in use",
  // and `stack` of it said only that no inspector came up. NODE_OPTIONS=--inspect had a port each.
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--name', 'inspectargs', '--node-arg=--inspect'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const address = (id: number) => cluster.waitForLine((line) => line.worker === id && /^Debugger listening on ws:\/\/127\.0\.0\.1:\d+\//.test(line.message));
  const ports = (await Promise.all([address(1), address(2)])).map((line) => new URL(/ws:\/\/\S+/.exec(line.message)![0]).port);
  t.not(ports[0], ports[1]);
  for (const id of ['1', '2']) {
    const stack = await ctl.run(['stack', 'inspectargs', id]);
    t.is(stack.exitCode, 0, String(stack.stderr));
  }
  t.false(cluster.lines.some((line) => /Starting inspector on .* failed/.test(line.message)), cluster.lines.map((line) => line.message).join('\n'));
});

test('NODE_OPTIONS=--inspect is for the workers: the master closes the inspector Node opened in it', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', 'inspectenv'], env: { ...ctl.env, NODE_OPTIONS: '--inspect' } });
  t.teardown(() => cluster.stop('SIGKILL'));
  // Node opens it on 127.0.0.1:9229 before clusterd runs, unless that port is taken (another test's).
  const opened = cluster.stderr.some((line) => /^Debugger listening on ws:\/\/127\.0\.0\.1:9229\//.test(line));
  if (opened) t.true(cluster.stderr.some((line) => line.startsWith("clusterd: NODE_OPTIONS' --inspect is for the workers: the master closed the inspector it opened at 127.0.0.1:9229")), cluster.stderr.join('\n'));
  else t.true(cluster.stderr.some((line) => /^Starting inspector on 127\.0\.0\.1:9229 failed/.test(line)), cluster.stderr.join('\n'));
  const stack = await ctl.run(['stack', 'inspectenv', '1']);
  t.is(stack.exitCode, 0, String(stack.stderr));
});
