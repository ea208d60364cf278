// --node-arg is repeatable: every flag reaches every worker's node, before clusterd's runtime.
import test from 'ava';
import { fixture, startCluster } from '../helpers/cluster.js';

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
