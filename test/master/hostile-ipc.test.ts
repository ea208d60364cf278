// Issue 11: an app that sends the master malformed look-alikes of clusterd's messages (a listen
// without a query, a stats sample that is empty, a listen for a unix path with a port and one of
// the master's descriptors) changes nothing: the master stays up, status, ls and /metrics answer,
// no bad sample enters the history, and each worker's garbage is logged once, not once per message.
import test from 'ava';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, get, isRunning, startCluster, waitFor } from '../helpers/cluster.js';
import { control, type WorkerJson } from '../helpers/control.js';
import { getJson, untilEveryWorker } from '../helpers/requests.js';

test('malformed protocol messages from the app are dropped and logged once per worker', async (t) => {
  const ctl = control(t);
  // The unix path the app asks the master to bind, in a directory of this test's own: nothing else
  // (another run, a stale file) can put a socket there.
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-evil-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const evilSocket = join(dir, 'evil.sock');
  const cluster = await startCluster(fixture('hostile-ipc.js'), {
    instances: 2,
    flags: ['--name', 'hostile', '--metrics', '127.0.0.1:0', '--max-memory', '1G', '--stats-interval', '200ms'],
    env: { ...ctl.env, EVIL_SOCKET: evilSocket },
  });
  t.teardown(() => cluster.stop('SIGKILL'));
  const metricsUrl = new URL(String(cluster.lines.find((line) => line.event === 'ready')!.metrics));

  await untilEveryWorker(() => getJson(cluster.port, '/attack'), cluster.pids, { what: 'both workers attacked' });
  // A line for each worker: the two workers' garbage reaches the master independently.
  const malformed = () => cluster.lines.filter((line) => line.event === 'malformed-message');
  await waitFor(() => new Set(malformed().map((line) => line.worker)).size === 2, { what: 'a malformed-message line for each worker' });
  for (const line of malformed()) t.log(line.message);

  // Everything still works, with real samples only: status answers at once, and every worker's
  // sample, once one has come, is a real one (the empty ones never entered the history).
  const status = await ctl.run(['status', 'hostile', '--json']);
  t.is(status.exitCode, 0, String(status.stderr));
  t.deepEqual((JSON.parse(String(status.stdout)) as { workers: WorkerJson[] }).workers.map((worker) => worker.pid).sort(), [...cluster.pids].sort());
  const workers = await waitFor(
    async () => {
      const current = await ctl.workers('hostile');
      return current.every((worker) => worker.rss !== null) ? current : null;
    },
    { what: 'a sample from every worker' },
  );
  for (const worker of workers) t.true(typeof worker.rss === 'number' && worker.rss > 0, `rss ${worker.rss}`);
  const listed = await ctl.run(['ls', '--json']);
  t.is(listed.exitCode, 0);
  t.true(String(listed.stdout).includes('"hostile"'));
  const metrics = await get(Number(metricsUrl.port), '/metrics');
  t.is(metrics.status, 200);
  t.is((await get(cluster.port)).status, 200);
  t.true(isRunning(cluster.masterPid));
  t.false(existsSync(evilSocket), 'the master bound no unix socket for the app');

  // 400 malformed messages per worker, one log line each (the next may come a minute later).
  t.deepEqual(malformed().map((line) => line.worker).sort(), [1, 2]);
  t.false(cluster.lines.some((line) => line.event === 'worker-exit' || line.event === 'fatal'));
});

/**
 * A 2-worker cluster of hostile-channel.js in `mode`; `attack()` has one worker attack (the one that
 * answers GET /attack) and resolves with its pid.
 */
async function hostileChannel(t: import('ava').ExecutionContext, mode: string) {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hostile-channel.js'), { instances: 2, flags: ['--name', `channel-${mode}`], env: { ...ctl.env, HOSTILE: mode } });
  t.teardown(() => cluster.stop('SIGKILL'));
  const attack = async (): Promise<number> => ((await getJson(cluster.port, '/attack')) as { pid: number }).pid;
  return { ctl, cluster, attack };
}

for (const [mode, why] of [
  ['garbage', 'something other than a message'],
  ['big', 'a message of over 8 MiB'],
  // Node's JSON.parse of 4 million levels held the master's loop for 0.65 s (and 1.5 GB) a message.
  ['deep', 'a message nested more than 64 deep'],
] as const) {
  test(`a worker that breaks its IPC channel (${mode}) is killed and replaced; the master and the other worker go on`, async (t) => {
    const { ctl, cluster, attack } = await hostileChannel(t, mode);
    const attacker = await attack();
    const broken = await cluster.waitForLine((line) => line.event === 'channel-broken');
    t.true(broken.message.includes(`(pid ${attacker}) broke its IPC channel: it wrote`) || broken.message.includes(`(pid ${attacker}) broke its IPC channel: it sent`), broken.message);
    t.true(broken.message.includes(why), broken.message);
    // Replaced: two workers again, the attacker not among them, and the master still answers.
    const workers = await waitFor(
      async () => {
        const current = await ctl.workers(`channel-${mode}`);
        return current.length === 2 && current.every((worker) => worker.pid !== attacker && worker.state === 'ready') ? current : null;
      },
      { what: 'the attacker replaced' },
    );
    t.is(workers.length, 2);
    t.true(isRunning(cluster.masterPid));
    t.false(isRunning(attacker));
    t.is((await get(cluster.port)).status, 200);
    t.false(cluster.lines.some((line) => line.event === 'fatal'));
  });
}

test("a forged acknowledgement of Node's handle passing is dropped: the master and the worker go on", async (t) => {
  const { ctl, cluster, attack } = await hostileChannel(t, 'ack');
  const attacker = await attack();
  // Messages after the forged ones still arrive (the stats, say): status sees the worker as it was.
  await waitFor(async () => (await ctl.workers('channel-ack')).some((worker) => worker.pid === attacker && worker.rss !== null), { what: 'a sample from the attacker' });
  t.true(isRunning(cluster.masterPid));
  t.true(isRunning(attacker));
  t.is((await get(cluster.port)).status, 200);
  t.false(cluster.lines.some((line) => line.event === 'fatal' || line.event === 'channel-broken'));
});

test('a 5 MiB line of output without a newline reaches the output in pieces of 1 MiB, kept clipped, and the master goes on', async (t) => {
  const { ctl, cluster, attack } = await hostileChannel(t, 'longline');
  const attacker = await attack();
  await cluster.waitForLine((line) => line.pid === attacker && line.message === 'after the long line');
  const pieces = cluster.lines.filter((line) => line.pid === attacker && line.stream === 'stdout' && /^y+$/.test(line.message));
  t.is(pieces.reduce((sum, line) => sum + line.message.length, 0), 5 * 1024 * 1024, 'nothing lost');
  t.is(pieces.length, 5, 'in pieces of 1 MiB');
  // What the master keeps for `clusterd logs` is clipped.
  const kept = await ctl.run(['logs', 'channel-longline', '--json']);
  const keptPieces = String(kept.stdout).trim().split('\n').map((line) => JSON.parse(line) as { message: string }).filter((line) => line.message.startsWith('yyy'));
  t.is(keptPieces.length, 5);
  t.true(keptPieces.every((line) => line.message.length < 17 * 1024 && line.message.endsWith('more characters]')));
  t.true(isRunning(cluster.masterPid));
});

test('sockets an app sends the master with its messages are closed: they took a descriptor of the master\'s each, for good', async (t) => {
  // 19,000 of them ran the master out of descriptors: `status` said no cluster ran, /metrics did not
  // answer, and a worker that died could not be forked again (EMFILE).
  const cluster = await startCluster(fixture('sends-handles.js'), { instances: 1, flags: ['--name', 'handles'] });
  t.teardown(() => cluster.stop('SIGKILL'));
  const descriptors = (): number => readdirSync(`/proc/${cluster.masterPid}/fd`).length;
  const before = descriptors();
  t.is((await get(cluster.port, '/handles/300', { timeoutMs: 60_000 })).status, 200);
  await cluster.waitForLine((line) => line.event === 'malformed-message');
  await waitFor(() => descriptors() <= before + 20, { what: `the master's descriptors back near ${before} (${descriptors()} now)` });
  const refused = cluster.lines.filter((line) => line.event === 'handle-refused');
  t.is(refused.length, 1, 'said once');
  t.like(refused[0], { worker: 1, count: 1 });
  t.is((await get(cluster.port)).status, 200);
});

test("sockets an app sends as connections of servers of their own leave nothing behind in the master (Node kept a listener per server key)", async (t) => {
  // Node's master side made each into a socket on a list of its server's key, with a listener on the
  // worker's ChildProcess per key that stayed for good: every later message from the worker ran through
  // all of them (20,000 keys: the master at 99% CPU). Past 10 of them Node warns on the master's stderr.
  const ctl = control(t);
  const cluster = await startCluster(fixture('sends-handles.js'), { instances: 1, flags: ['--name', 'keyed'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const descriptors = (): number => readdirSync(`/proc/${cluster.masterPid}/fd`).length;
  const before = descriptors();
  // It answers only once the master has acknowledged every socket (each send waits for the last's).
  t.is((await get(cluster.port, '/keyed/40', { timeoutMs: 60_000 })).status, 200);
  // The look-alike after the sockets: the master has read them all.
  await cluster.waitForLine((line) => line.event === 'malformed-message');
  t.like(cluster.lines.find((line) => line.event === 'handle-refused'), { worker: 1 });
  await waitFor(() => descriptors() <= before + 20, { what: `the master's descriptors back near ${before} (${descriptors()} now)` });
  // A round trip through the master: what it wrote on its stderr for those messages has come.
  t.is((await ctl.run(['status', 'keyed'])).exitCode, 0);
  t.false(cluster.stderr.some((line) => line.includes('MaxListenersExceededWarning')), cluster.stderr.join('\n'));
  t.is((await get(cluster.port)).status, 200);
  t.true(isRunning(cluster.masterPid));
});

for (const [kind, field] of [
  ['lag', 'sample.lag.max'],
  ['cpu', 'sample.cpu'],
  ['requests', 'sample.http.requests'],
] as const) {
  test(`a forged loop sample with an impossible ${kind} (in the parser's ranges) is dropped as malformed and shown nowhere`, async (t) => {
    const ctl = control(t);
    // No samples of the runtime's own: one that came would hide whether the forged one was taken.
    const cluster = await startCluster(fixture('forges-stats.js'), { instances: 1, flags: ['--name', `forged-${kind}`, '--stats-interval', '0'], env: ctl.env });
    t.teardown(() => cluster.stop('SIGKILL'));
    await getJson(cluster.port, `/forge/${kind}`);
    const malformed = await cluster.waitForLine((line) => line.event === 'malformed-message');
    t.is(malformed.cmd, 'NODE_clusterd:stats');
    t.true(String(malformed.error).startsWith(`${field}:`), String(malformed.error));
    // The line is said as the master drops it: no sample was kept, so status shows none.
    const [worker] = await ctl.workers(`forged-${kind}`);
    t.like(worker, { rss: null, lag: null, connections: null });
  });
}

for (const [what, name, flag] of [
  ['its --metrics address', 'claims-metrics', '--metrics'],
  ["the cluster's shared port", 'claims-shared', "the cluster's shared address"],
] as const) {
  test(`a worker's forged exclusive listen on ${what} is refused as malformed, and listed nowhere`, async (t) => {
    const ctl = control(t);
    const cluster = await startCluster(fixture('claims-master-address.js'), { instances: 1, flags: ['--name', name, '--metrics', '127.0.0.1:0'], env: ctl.env });
    t.teardown(() => cluster.stop('SIGKILL'));
    const metricsPort = Number(new URL(String(cluster.lines.find((line) => line.event === 'ready')!.metrics)).port);
    const claimed = flag === '--metrics' ? metricsPort : cluster.port;
    await getJson(cluster.port, `/claim/${claimed}`);
    const malformed = await cluster.waitForLine((line) => line.event === 'malformed-message');
    t.is(malformed.cmd, 'NODE_clusterd:own-listen');
    t.true(String(malformed.error).includes(`127.0.0.1:${claimed} is `) && String(malformed.error).includes(flag), String(malformed.error));
    // Refused as the master read it: status lists the shared address alone, none as the worker's own.
    const status = JSON.parse(String((await ctl.run(['status', name, '--json'])).stdout)) as { addresses: string[] };
    t.deepEqual(status.addresses, [`127.0.0.1:${cluster.port}`]);
    t.false(cluster.lines.some((line) => line.event === 'listen-exclusive'));
  });
}
