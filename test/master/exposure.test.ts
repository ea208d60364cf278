// One-line warnings at start for what others may reach (src/master/exposure.ts): a --control or
// --metrics listener beyond loopback, and a control token short enough to guess. --health gets
// none: it is bound to the pod's address on purpose, for the kubelet's probes.
import test from 'ava';
import { controlExposure, metricsExposure, tokenWeakness } from '../../src/master/exposure.js';
import { fixture, startCluster } from '../helpers/cluster.js';

const WARNINGS = ['control-exposed', 'metrics-exposed', 'control-token-short', 'dashboard-exposed'];

test('--control, --metrics and --health on 0.0.0.0 with a short token: one line each for control, metrics and the token, none for health; on loopback with a long token, none', async (t) => {
  const open = await startCluster(fixture('hello.js'), {
    instances: 1,
    flags: ['--name', 'exposed', '--control', '0.0.0.0:0', '--control-token', 'sesame', '--metrics', '0.0.0.0:0', '--health', '0.0.0.0:0'],
  });
  t.teardown(() => open.stop());
  await open.waitForLine((line) => line.event === 'ready');
  const said = (event: string) => open.lines.filter((line) => line.event === event).map((line) => String(line.message));
  t.deepEqual(said('control-exposed').length, 1);
  t.regex(said('control-exposed')[0]!, /^the control listener on 0\.0\.0\.0:\d+ is not on a loopback address: .* clear text/);
  t.deepEqual(said('metrics-exposed').length, 1);
  t.regex(said('metrics-exposed')[0]!, /^the metrics endpoint on 0\.0\.0\.0:\d+ is not on a loopback address: anyone who can reach it reads .* without a token/);
  t.deepEqual(said('control-token-short'), ['the control token is 6 characters long: one shorter than 16 can be guessed (make one with `openssl rand -hex 16`)']);
  t.false(open.lines.some((line) => line.level === 'warn' && /health|readyz/.test(String(line.message))), 'no warning for --health');
  await open.stop();

  const local = await startCluster(fixture('hello.js'), {
    instances: 1,
    flags: ['--name', 'local', '--control', '127.0.0.1:0', '--control-token', 'a-token-of-16-ch', '--metrics', '127.0.0.1:0', '--health', '127.0.0.1:0'],
  });
  t.teardown(() => local.stop());
  await local.waitForLine((line) => line.event === 'ready');
  t.deepEqual(local.lines.filter((line) => WARNINGS.includes(String(line.event))), []);
});

test('exposure lines: none on any loopback address; the token\'s from 16 characters on', (t) => {
  for (const host of ['127.0.0.1', '::1', 'localhost', '127.0.0.2']) {
    t.is(controlExposure({ host, port: 7070 }), null, host);
    t.is(metricsExposure({ host, port: 9464 }), null, host);
  }
  t.regex(controlExposure({ host: '::', port: 7070 }) ?? '', /^the control listener on \[::\]:7070 is not on a loopback address/);
  t.regex(metricsExposure({ host: '10.0.0.5', port: 9464 }) ?? '', /^the metrics endpoint on 10\.0\.0\.5:9464/);
  t.regex(tokenWeakness('control', 'x') ?? '', /^the control token is 1 character long/);
  t.is(tokenWeakness('control', 'x'.repeat(16)), null);
  t.regex(tokenWeakness('dashboard', 'sesame') ?? '', /^the dashboard token is 6 characters long/);
});
