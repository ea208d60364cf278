// Issue 4's reload proofs: no failed request under load, and a broken deploy changes nothing.
import test, { type ExecutionContext } from 'ava';
import autocannon from 'autocannon';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, get, startCluster, waitFor } from '../helpers/cluster.js';
import { loadLoop } from '../helpers/requests.js';
import { control } from '../helpers/control.js';
import { ExitCode } from '../../src/exit-codes.js';

/** Requests on a new connection each, one after another, until stopped; counts what failed. */
function newConnectionStream(port: number): { stop(): Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  const failed: string[] = [];
  let ok = 0;
  const loop = (async () => {
    while (running) {
      try {
        const response = await get(port, '/');
        if (response.status === 200) ok++;
        else failed.push(`status ${response.status}`);
      } catch (error) {
        failed.push((error as Error).message);
      }
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ok, failed };
    },
  };
}

test('a reload under keep-alive and new-connection load fails no request and leaves only new workers', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--name', 'reloaded'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const before = await ctl.workers('reloaded');
  t.deepEqual(before.map((worker) => worker.generation), [1, 1]);

  const streams = [newConnectionStream(cluster.port), newConnectionStream(cluster.port)];
  // Without a callback autocannon returns an instance that is both a promise and an emitter.
  const load = autocannon({ url: `http://127.0.0.1:${cluster.port}/`, connections: 64, duration: 10, timeout: 10 }) as unknown as Promise<autocannon.Result> & {
    on(event: 'response', listener: () => void): void;
  };
  // Reload in the middle of the run, once traffic flows.
  let reloaded: Promise<import('execa').Result> | null = null;
  let responses = 0;
  load.on('response', () => {
    if (++responses === 2000) reloaded = ctl.run(['reload', 'reloaded']);
  });
  const result = await load;
  const streamed = await Promise.all(streams.map((stream) => stream.stop()));
  t.truthy(reloaded, 'the reload was started during the load');
  const reload = await reloaded!;
  t.is(reload.exitCode, 0, String(reload.stderr));
  t.log(`autocannon: ${result.requests.total} requests, new-connection streams: ${streamed.map((s) => s.ok).join(' + ')}`);

  t.is(result.errors, 0, 'socket errors');
  t.is(result.timeouts, 0, 'timeouts');
  t.is(result.non2xx, 0, 'non-2xx responses');
  t.deepEqual(streamed.flatMap((stream) => stream.failed), []);
  t.true(streamed.every((stream) => stream.ok > 0));

  const after = await ctl.workers('reloaded');
  t.deepEqual(after.map((worker) => [worker.id, worker.generation, worker.state]), [
    [1, 2, 'ready'],
    [2, 2, 'ready'],
  ]);
  t.true(after.every((worker) => !before.some((old) => old.pid === worker.pid)));
});

test('a reload of workers sharing a unix socket path fails no request', async (t) => {
  const ctl = control(t);
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-unix-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'app.sock');
  const cluster = await startCluster(fixture('unix-shared.js'), { instances: 2, flags: ['--name', 'reloaded-unix'], env: ctl.env, appArgs: [socketPath] });
  t.teardown(() => cluster.stop('SIGKILL'));
  const load = loadLoop({ socketPath }, { concurrency: 4 });
  t.teardown(() => load.stop());
  await waitFor(() => load.stats.ok >= 200, { what: '200 requests before the reload' });
  const reload = await ctl.run(['reload', 'reloaded-unix']);
  t.is(reload.exitCode, 0, String(reload.stderr));
  const after = await ctl.workers('reloaded-unix');
  const servedBefore = load.stats.ok;
  await waitFor(() => after.every((worker) => load.stats.byPid.has(worker.pid)) && load.stats.ok >= servedBefore + 100, { what: 'the new workers serving' });
  const stats = await load.stop();
  t.log(`${stats.ok} requests, by pid ${JSON.stringify([...stats.byPid])}`);
  t.is(stats.failed, 0, stats.errors.slice(0, 3).join('; '));
  t.false(after.some((worker) => cluster.pids.includes(worker.pid)), 'only new workers are left');
});

const closesOwnServer = test.macro({
  async exec(t, balance: string, onClosed: 'exit' | 'none') {
    // Express's docs stop a server with server.close() in a SIGTERM listener. Node's own close()
    // (>= 19) closes idle keep-alive connections at once: a client sending its next request on
    // one at that moment gets ECONNRESET. A long grace: a drain that does not end on its own shows
    // as a grace-expired line.
    const ctl = control(t);
    const name = `closes-own-${balance}`;
    const cluster = await startCluster(fixture('closes-on-sigterm.js'), {
      instances: 2,
      flags: ['--name', name, '--balance', balance, '--grace', '30s'],
      env: { ...ctl.env, ON_CLOSED: onClosed },
    });
    t.teardown(() => cluster.stop('SIGKILL'));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 24 });
    t.teardown(() => agent.destroy());
    const load = loadLoop(cluster.port, { concurrency: 24, agent });
    t.teardown(() => load.stop());
    await waitFor(() => load.stats.ok >= 200, { what: '200 requests before the reload' });
    for (const generation of [2, 3]) {
      const reload = await ctl.run(['reload', name]);
      t.is(reload.exitCode, 0, String(reload.stderr));
      const after = await ctl.workers(name);
      t.deepEqual(after.map((worker) => worker.generation), [generation, generation]);
      const servedBefore = load.stats.ok;
      await waitFor(() => after.every((worker) => load.stats.byPid.has(worker.pid)) && load.stats.ok >= servedBefore + 200, { what: `generation ${generation} serving` });
    }
    const stats = await load.stop();
    t.log(`${stats.ok} requests over keep-alive connections`);
    t.is(stats.failed, 0, `${stats.failed} failed: ${[...new Set(stats.errors)].join('; ')}`);
    // Every old worker exited by itself once its connections were done, none at --grace.
    t.deepEqual(cluster.lines.filter((line) => line.event === 'grace-expired').map((line) => line.message), []);
  },
  title: (_title, balance: string, onClosed: 'exit' | 'none') =>
    `a reload of an app whose SIGTERM listener calls server.close(${onClosed === 'exit' ? '() => process.exit(0)' : ''}) fails no keep-alive request (--balance ${balance})`,
});
// Serial: 24 request loops each, which the other tests of this file, run beside them, wait behind.
test.serial(closesOwnServer, 'least', 'none');
test.serial(closesOwnServer, 'fair', 'exit');

/** A 2-worker cluster `name` of hello.js copied into a folder of its own (the deploy, for the test to change), torn down with the test. */
async function deployedCluster(t: ExecutionContext, name: string, flags: string[] = []) {
  const ctl = control(t);
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-deploy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const entry = join(dir, 'app.js');
  copyFileSync(fixture('hello.js'), entry);
  const cluster = await startCluster(entry, { instances: 2, flags: ['--name', name, ...flags], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  return { ctl, entry, cluster };
}

test('a reload to code that throws at start-up fails, and the old workers keep answering', async (t) => {
  const { ctl, entry, cluster } = await deployedCluster(t, 'deploy');

  writeFileSync(entry, "throw new Error('broken deploy: missing DATABASE_URL');\n");
  const reload = await ctl.run(['reload', 'deploy']);
  // README: a reload whose new worker fails to boot exits 3.
  t.is(reload.exitCode, ExitCode.BOOT_FAILED, String(reload.stderr));
  t.regex(String(reload.stderr), /^clusterd: .*broken deploy: missing DATABASE_URL/m);

  const workers = await ctl.workers('deploy');
  t.deepEqual(workers.map((worker) => [worker.id, worker.generation, worker.state]), [
    [1, 1, 'ready'],
    [2, 1, 'ready'],
  ]);
  const pids = new Set(cluster.pids);
  for (let i = 0; i < 40; i++) {
    const response = await get(cluster.port);
    t.is(response.status, 200);
    t.true(pids.has((JSON.parse(response.body) as { pid: number }).pid));
  }
});

test('a scale up to code that throws at start-up fails with its output and goes back to the count before; the workers that served go on', async (t) => {
  const { ctl, entry, cluster } = await deployedCluster(t, 'scalebroken');

  writeFileSync(entry, "console.error('scale boot output'); throw new Error('broken deploy: missing DATABASE_URL');\n");
  const scale = await ctl.run(['scale', 'scalebroken', '+2']);
  t.is(scale.exitCode, ExitCode.BOOT_FAILED, String(scale.stderr));
  const lines = String(scale.stderr).trim().split('\n');
  t.regex(lines[0]!, /^clusterd: worker [34] exited with code 1 before it was ready: Error: broken deploy: missing DATABASE_URL; scaled back to 2 workers$/);
  t.true(lines.slice(1).some((line) => line.includes('scale boot output')), 'the worker\'s last output under the line');

  // The new ids are gone (one still starting is stopped), the two that served are untouched.
  const workers = await waitFor(async () => {
    const now = await ctl.workers('scalebroken');
    return now.length === 2 && now;
  }, { what: 'the scale taken back' });
  t.deepEqual(workers.map((worker) => [worker.id, worker.state, worker.pid]), [
    [1, 'ready', cluster.pids[0]],
    [2, 'ready', cluster.pids[1]],
  ]);
  t.regex(String((await ctl.run(['status', 'scalebroken'])).stdout), /\b2\/2 ready\b/);
  t.deepEqual(cluster.lines.filter((line) => line.event === 'fatal'), []);
  t.is((await get(cluster.port)).status, 200);
});

test('a scale asked while another is still waiting for its workers overtakes it: the first exits 9, the second applies', async (t) => {
  const { ctl, entry, cluster } = await deployedCluster(t, 'overtaken');

  // The new worker never gets ready (within the default --listen-timeout), so the first scale waits.
  copyFileSync(fixture('never-listens.js'), entry);
  const first = ctl.run(['scale', 'overtaken', '3']);
  await waitFor(async () => (await ctl.workers('overtaken')).some((worker) => worker.id === 3), { what: 'worker 3 starting' });
  const second = await ctl.run(['scale', 'overtaken', '2']);
  t.is(second.exitCode, 0, String(second.stderr));
  const overtaken = await first;
  t.is(overtaken.exitCode, ExitCode.BUSY, String(overtaken.stderr));
  // After a second without its answer, scale says what it waits for (one line, before the answer's).
  const said = String(overtaken.stderr).trim().split('\n');
  t.deepEqual(said.filter((line) => !line.startsWith('clusterd: waiting for ')), ['clusterd: overtaken by a scale to 2 workers before 3 were ready']);
  t.true(said.length <= 2, said.join('\n'));
  const workers = await waitFor(async () => {
    const now = await ctl.workers('overtaken');
    return now.length === 2 && now;
  }, { what: 'worker 3 gone' });
  t.deepEqual(workers.map((worker) => [worker.id, worker.pid]), [
    [1, cluster.pids[0]],
    [2, cluster.pids[1]],
  ]);
});

test('a reload stops when a new worker dies once ready: the old workers not yet replaced serve on, and it exits 3 with the output', async (t) => {
  // Going on drained the old, good workers one by one and left none serving, and said it had succeeded.
  const { ctl, entry, cluster } = await deployedCluster(t, 'crashafterready');
  writeFileSync(
    entry,
    [
      "import http from 'node:http';",
      "const id = process.env.CLUSTERD_WORKER_ID;",
      // Worker 1's new code dies soon after it is ready; worker 2's is still booting then.
      "setTimeout(() => http.createServer((request, response) => response.end('ok')).listen(0, '127.0.0.1', () => {",
      "  if (id === '1') setTimeout(() => { throw new Error('lost the database after ready'); }, 100);",
      "}), id === '1' ? 0 : 3000);",
      '',
    ].join('\n'),
  );
  const reload = await ctl.run(['reload', 'crashafterready'], { timeoutMs: 30_000 });
  t.is(reload.exitCode, ExitCode.BOOT_FAILED, String(reload.stdout));
  t.regex(String(reload.stderr), /reload failed after 1 of 2 workers: worker 1's new generation \(pid \d+\) failed after it was ready: it exited with code 1/);
  t.regex(String(reload.stderr), /lost the database after ready/);
  const workers = await ctl.workers('crashafterready');
  const two = workers.find((worker) => worker.id === 2)!;
  t.is(two.pid, cluster.pids[1]!, 'the old worker 2 serves on');
  t.is(two.generation, 1);
});

test('a scale down that overtakes a scale up ends the worker still starting at once, not after --grace', async (t) => {
  // Its runtime not loaded yet, the worker never heard the stop: it stayed 'stopping' for the whole
  // --grace, then was killed with a line blaming its loop.
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), {
    instances: 1,
    flags: ['--name', 'scaledstarting', '--grace', '2m', `--node-arg=--require=${fixture('slow-preload.cjs')}`],
    env: { ...ctl.env, PRELOAD_SLEEP_MS: '3000' },
    readyTimeoutMs: 30_000,
  });
  t.teardown(() => cluster.stop('SIGKILL'));
  const up = ctl.run(['scale', 'scaledstarting', '2']);
  await waitFor(async () => (await ctl.workers('scaledstarting')).some((worker) => worker.id === 2), { what: 'worker 2 starting' });
  const down = await ctl.run(['scale', 'scaledstarting', '1']);
  t.is(down.exitCode, 0, String(down.stderr));
  await waitFor(async () => (await ctl.workers('scaledstarting')).length === 1, { what: 'worker 2 gone', timeoutMs: 20_000 });
  // Overtaken (exit 9), or done first on a box slow enough that worker 2 got ready in between.
  t.true([0, ExitCode.BUSY].includes((await up).exitCode ?? -1));
  t.deepEqual(cluster.lines.filter((line) => /--grace .* over/.test(line.message)), []);
});

test('a reload overtaken by a scale down skips the ids the scale took away: it succeeds with the workers left', async (t) => {
  const { ctl, entry, cluster } = await deployedCluster(t, 'reloadscaled');
  // Each new worker takes 3 s to listen: the scale comes while worker 1's successor boots.
  writeFileSync(entry, ["import http from 'node:http';", "setTimeout(() => http.createServer((request, response) => response.end('ok')).listen(0, '127.0.0.1'), 3000);", ''].join('\n'));
  const reload = ctl.run(['reload', 'reloadscaled'], { timeoutMs: 30_000 });
  await waitFor(async () => (await ctl.workers('reloadscaled')).some((worker) => worker.generation === 2 && worker.state === 'starting'), { what: "worker 1's successor booting" });
  const scale = await ctl.run(['scale', 'reloadscaled', '1']);
  t.is(scale.exitCode, 0, String(scale.stderr));
  const result = await reload;
  t.is(result.exitCode, 0, String(result.stderr));
  t.regex(String(result.stdout), /reloaded 1 worker: generation 2/);
  const workers = await waitFor(async () => {
    const now = await ctl.workers('reloadscaled');
    return now.length === 1 && now;
  }, { what: 'one worker left' });
  t.deepEqual(workers.map((worker) => [worker.id, worker.generation]), [[1, 2]]);
  t.not(workers[0]!.pid, cluster.pids[0]);
});

test('a reload or restart asked while the cluster stops says so (exit 7), not that the worker does not exist', async (t) => {
  const ctl = control(t);
  // A request that never ends holds the worker's drain for the whole --grace: the stop lasts as long
  // as the checks below take, however slow a loaded box makes each CLI call.
  const cluster = await startCluster(fixture('slow-routes.js'), { instances: 1, flags: ['--name', 'reloadstopping', '--grace', '2m'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  get(cluster.port, '/hang', { timeoutMs: 150_000 }).catch(() => {});
  await cluster.waitForLine((line) => /hang request started/.test(String(line.message)));
  process.kill(cluster.masterPid, 'SIGTERM');
  await cluster.waitForLine((line) => line.event === 'signal');
  for (const args of [['reload', 'reloadstopping'], ['restart', 'reloadstopping', '1']]) {
    const result = await ctl.run(args);
    t.is(result.exitCode, ExitCode.NOT_FOUND, String(result.stderr));
    t.deepEqual(String(result.stderr).trim().split('\n'), ['clusterd: the cluster is stopping'], args.join(' '));
    // Said once: the reload's failed step, which is the same line, is not printed on stdout as well.
    t.is(String(result.stdout), '', args.join(' '));
  }
  t.false(cluster.lines.some((line) => line.event === 'stopped'), 'the cluster was still stopping all along');
});

test('a worker that crashes into code that cannot boot is retried while the other serves, past --max-boot-failures; fixed code brings it back', async (t) => {
  const { ctl, entry, cluster } = await deployedCluster(t, 'crashbroken', ['--max-boot-failures', '1']);
  const good = readFileSync(entry);

  writeFileSync(entry, "throw new Error('broken deploy');\n");
  process.kill(cluster.pids[0]!, 'SIGKILL');
  let failures = 0;
  const failed = await cluster.waitForLine((line) => line.event === 'boot-failed' && ++failures === 2, 20_000);
  t.regex(failed.message, /^worker 1 failed to boot: exited with code 1 before it was ready: Error: broken deploy; retrying in \d+\.\d s while 1 worker serves$/);
  t.deepEqual(cluster.lines.filter((line) => line.event === 'fatal'), [], 'the master runs on');
  t.is((await get(cluster.port)).status, 200);
  const status = String((await ctl.run(['status', 'crashbroken'])).stdout);
  t.regex(status, /\b1\/2 ready\b/, status);
  t.like((JSON.parse(String((await ctl.run(['ls', '--json'])).stdout)) as unknown[])[0], { name: 'crashbroken', ready: 1, desired: 2 });

  writeFileSync(entry, good);
  const back = await waitFor(async () => {
    const workers = await ctl.workers('crashbroken');
    return workers.length === 2 && workers.every((worker) => worker.state === 'ready') && workers;
  }, { timeoutMs: 20_000, what: 'worker 1 back' });
  t.not(back[0]!.pid, cluster.pids[0]!);
  t.is(back[1]!.pid, cluster.pids[1]!);
});

test('a reload asked while a worker id is retrying a boot that fails ends with why (exit 3), not waiting for that boot for good', async (t) => {
  // Each of worker 1's boots waits 10 s before it fails: the reload below is asked inside one.
  const { ctl, entry, cluster } = await deployedCluster(t, 'reloadretry', ['--listen-timeout', '10s']);

  // Worker 1's replacements never get ready (each fails at --listen-timeout); worker 2 serves.
  writeFileSync(
    entry,
    [
      "import http from 'node:http';",
      "if (process.env.CLUSTERD_WORKER_ID === '1') setInterval(() => {}, 1 << 30);",
      "else http.createServer((request, response) => response.end('ok')).listen(0, '127.0.0.1');",
      '',
    ].join('\n'),
  );
  process.kill(cluster.pids[0]!, 'SIGKILL');
  // Asked early in a boot (a reload asked between two boots has no worker 1 to replace, and succeeds).
  // Each look is a `clusterd status`, which took over a second on a loaded CI box: the first half of
  // the boot, and looks for 20 s (10 s once missed the 3 s this asked for).
  await waitFor(
    async () => (await ctl.workers('reloadretry')).some((worker) => worker.id === 1 && worker.state === 'starting' && (worker as { uptimeMs?: number }).uptimeMs! < 5000),
    { what: 'worker 1 booting again', timeoutMs: 20_000 },
  );
  const reload = await ctl.run(['reload', 'reloadretry'], { timeoutMs: 30_000 });
  t.false(reload.timedOut, 'the reload ended');
  t.is(reload.exitCode, ExitCode.BOOT_FAILED, String(reload.stderr));
  t.regex(String(reload.stderr), /^clusterd: reload failed after 0 of 2 workers: worker 1 was killed by SIGKILL before it was ready: \(clusterd: not ready after 10000 ms; see --listen-timeout\)$/m);
  // The cluster runs on, worker 2 serving, worker 1 still retried.
  t.deepEqual(cluster.lines.filter((line) => line.event === 'fatal'), []);
  t.is((await get(cluster.port)).status, 200);
});

test('reload, restart and scale up with the entry gone: one line, exit 3, nothing replaced; scale down still works', async (t) => {
  const { ctl, entry, cluster } = await deployedCluster(t, 'gone');

  rmSync(entry);
  for (const args of [['reload', 'gone'], ['restart', 'gone', '1'], ['scale', 'gone', '+1']]) {
    const result = await ctl.run(args);
    t.is(result.exitCode, ExitCode.BOOT_FAILED, String(result.stderr));
    t.deepEqual(String(result.stderr).trim().split('\n'), [`clusterd: the entry ${entry} does not exist (moved or deleted since the cluster started?): nothing was replaced`], args.join(' '));
  }
  const workers = await ctl.workers('gone');
  t.deepEqual(workers.map((worker) => [worker.id, worker.generation, worker.state, worker.pid]), [
    [1, 1, 'ready', cluster.pids[0]],
    [2, 1, 'ready', cluster.pids[1]],
  ]);
  t.is((await ctl.run(['scale', 'gone', '1'])).exitCode, 0);
  t.is((await get(cluster.port)).status, 200);
});

test('SIGTTIN, SIGTTOU and SIGHUP are logged with the signal that asked, then done, as the control plane\'s requests are', async (t) => {
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', 'signalled-ops'] });
  t.teardown(() => cluster.stop('SIGKILL'));
  const asked = (): string[] => cluster.lines.filter((line) => line.event === 'operation-requested').map((line) => `${line.message} (${String(line.who)})`);

  cluster.process.kill('SIGTTIN');
  await cluster.waitForLine((line) => line.event === 'operation' && line.who === 'SIGTTIN');
  cluster.process.kill('SIGTTOU');
  await cluster.waitForLine((line) => line.event === 'operation' && line.who === 'SIGTTOU');
  cluster.process.kill('SIGHUP');
  const reloaded = await cluster.waitForLine((line) => line.event === 'operation' && line.who === 'SIGHUP');
  t.is(reloaded.message, 'reload (1 at a time) done');
  // Its steps name the worker they are about (they said `"worker": null` beside that worker's pid).
  const steps = cluster.lines.filter((line) => line.event === 'reload');
  t.true(steps.length > 0);
  for (const step of steps) t.like(step, { worker: 1, stream: 'master' }, JSON.stringify(step));
  t.true(steps.some((step) => step.phase === 'replaced'), JSON.stringify(steps));
  t.deepEqual(asked(), ['scale to +1 asked by SIGTTIN (SIGTTIN)', 'scale to -1 asked by SIGTTOU (SIGTTOU)', 'reload (1 at a time) asked by SIGHUP (SIGHUP)']);
  t.deepEqual(cluster.lines.filter((line) => line.event === 'operation-failed'), []);
});
