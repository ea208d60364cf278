// Issue 10: `fair`, the default balance mode, on real workers and real sockets. Distributions are
// asserted by counts (how a burst of keep-alive connections splits), never by speed.
import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import https from 'node:https';
import { fixture, startCluster, waitFor, type Cluster } from '../../helpers/cluster.js';
import { control, type Control } from '../../helpers/control.js';
import { selfSignedCert } from '../../helpers/tls.js';
import { listenerHolders } from '../../helpers/requests.js';

/** Opens `count` keep-alive connections at once, one request each; resolves with the pid that answered each, and a way to close them. */
async function burst(port: number, count: number): Promise<{ pids: number[]; close: () => void }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: count });
  const sockets = new Set<unknown>();
  const pids = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<number>((resolve, reject) => {
          const request = http.get({ host: '127.0.0.1', port, agent, path: '/', timeout: 10_000 }, (response) => {
            sockets.add(response.socket);
            let body = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => (body += chunk));
            response.on('end', () => resolve((JSON.parse(body) as { pid: number }).pid));
          });
          request.on('timeout', () => request.destroy(new Error('burst request timed out')));
          request.on('error', reject);
        }),
    ),
  );
  // Each request had a connection of its own: the split is one of connections.
  if (sockets.size !== count) throw new Error(`${count} requests used ${sockets.size} connections`);
  return { pids, close: () => agent.destroy() };
}

function split(pids: readonly number[], workers: readonly number[]): number[] {
  return workers.map((worker) => pids.filter((pid) => pid === worker).length);
}

/** GET / on a new connection; the pid that answered. */
function pidOfNewConnection(port: number, path = '/'): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 4000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve((JSON.parse(body) as { pid: number }).pid));
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${path} timed out`)));
    request.on('error', reject);
  });
}

/** A burst of `count` keep-alive connections on a fresh 2-worker cluster: every one served, the split within `margin` of even. */
async function evenBurst(t: ExecutionContext, count: number, margin: number, env: Record<string, string> = {}): Promise<void> {
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const { pids, close } = await burst(cluster.port, count);
  t.teardown(close);
  const [first, second] = split(pids, cluster.pids);
  t.log(`split ${first}/${second}`);
  t.is(first! + second!, count);
  t.true(Math.abs(first! - second!) <= margin, `split ${first}/${second}`);
}

for (const attempt of [1, 2, 3]) {
  test(`fair is the default, and a burst of 64 keep-alive connections on a fresh 2-worker cluster lands within 4 of even (cluster ${attempt} of 3)`, (t) => evenBurst(t, 64, 4));
}

// Connections kept open as a busy pool keeps them: none closes to make room (Node's 5 s
// keepAliveTimeout freed places, and hid the wait, in a pool that goes idle).
test('fair: a keep-alive pool of 100 on 2 workers is served whole, evenly (past 64, the rest waited in the queue for good)', (t) => evenBurst(t, 100, 8, { KEEP_ALIVE_MS: '60000' }));

test('fair: workers hold a copy of the listening socket only while they accept', async (t) => {
  const cluster = await startCluster(fixture('hello.js'), { instances: 2 });
  t.teardown(() => cluster.stop('SIGKILL'));
  await waitFor(async () => new Set(await Promise.all(Array.from({ length: 8 }, () => pidOfNewConnection(cluster.port)))).size === 2, {
    what: 'both workers answering',
  });
  // Idle and under their limit (once the connections above have closed), both accept: each holds
  // a copy, and so does the master. Checked on the reading that saw it, not a second one: on a loaded
  // box a worker's loop can be held past 100 ms by the scheduler alone, and a worker that lags is
  // rightly paused (its copy closed) until it keeps time again.
  const everyone = [cluster.masterPid, ...cluster.pids].sort();
  const holders = await waitFor(() => {
    const now = listenerHolders(cluster.port, everyone);
    return now.length === everyone.length && now;
  }, { what: 'every process to hold the socket' });
  t.deepEqual(holders.sort(), everyone);
});

test('fair: a worker whose loop is blocked receives no new connections while blocked', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('busy-route.js'), { instances: 2, flags: ['--name', 'fairblock', '--watchdog', '30s'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  await waitFor(async () => new Set(await Promise.all(Array.from({ length: 6 }, () => pidOfNewConnection(cluster.port)))).size === 2, {
    what: 'both workers answering',
  });
  const blocked = await pidOfNewConnection(cluster.port, '/spin');
  const blockedAt = Date.now();
  const other = cluster.pids.find((pid) => pid !== blocked)!;
  const answeredBy: number[] = [];
  for (let i = 0; i < 12; i++) answeredBy.push(await pidOfNewConnection(cluster.port));
  t.true(Date.now() - blockedAt < 10_000, 'all answered while the worker was still blocked');
  t.deepEqual(new Set(answeredBy), new Set([other]));
});

/**
 * A 2-worker cluster of `app`, whose worker 1 blocks its loop 120 ms every 300 ms, once worker 1 has
 * closed its copy of the socket at its first late tick; `holds(pid)`: whether that process holds a copy now.
 */
async function laggingCluster(t: ExecutionContext, app: string): Promise<{ cluster: Cluster; lagging: number; healthy: number; holds: (pid: number) => boolean }> {
  const cluster = await startCluster(fixture(app), { instances: 2, flags: ['--watchdog', '30s'] });
  t.teardown(() => cluster.stop('SIGKILL'));
  const [lagging, healthy] = cluster.pids as [number, number];
  const holds = (pid: number): boolean => listenerHolders(cluster.port, [cluster.masterPid, lagging, healthy]).includes(pid);
  await waitFor(() => !holds(lagging), { what: 'worker 1 to stop accepting' });
  return { cluster, lagging, healthy, holds };
}

/**
 * Asks `window` (null: it held; else what missed) up to three times. The rule these tests check (a
 * lagging worker takes nothing while another can) does not apply in a window where the healthy
 * worker lagged too, which a loaded 2-core box brings about now and then (a tick 100 ms late from
 * the scheduler alone): then no worker keeps time, and worker 1 is rightly sent a copy. Without the
 * rule, worker 2 would take each of 16 new connections with p ~ 0.7 (worker 1 turns 60% of the time
 * and races it): all 16 in one of three windows ~ 1%, so the test still fails without it.
 */
async function inOneOfThreeWindows(t: ExecutionContext, window: () => Promise<string | null>): Promise<void> {
  const misses: string[] = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    const miss = await window();
    if (miss === null) {
      if (misses.length > 0) t.log(`held in window ${attempt}; missed before: ${misses.join('; ')}`);
      t.pass();
      return;
    }
    misses.push(miss);
  }
  t.fail(`missed in three windows: ${misses.join('; ')}`);
}

/** 16 new connections one after another to `port`: null if only `healthy` answered, else who else did. */
async function onlyHealthyAnswers(port: number, healthy: number): Promise<string | null> {
  const answeredBy: number[] = [];
  for (let i = 0; i < 16; i++) answeredBy.push(await pidOfNewConnection(port));
  const others = answeredBy.filter((pid) => pid !== healthy);
  return others.length === 0 ? null : `${others.length} of 16 answered by ${[...new Set(others)].join(', ')}`;
}

test('fair: a worker whose loop lags (held past 100 ms, but turning) takes no new connection while the other can', async (t) => {
  const { cluster, lagging, healthy, holds } = await laggingCluster(t, 'lags-worker-1.js');
  // One new connection at a time: the healthy worker is never at its limit, so it takes every one,
  // where the kernel's race would give worker 1 those that arrive while its loop turns.
  await inOneOfThreeWindows(t, async () => (await onlyHealthyAnswers(cluster.port, healthy)) ?? (holds(lagging) ? 'worker 1 holds a copy after them' : null));
});

test('fair: a server a lagging worker starts in the middle of its lag starts out last in line too', async (t) => {
  // Worker 1 listens its second server after its third block, while it lags: that server's copy
  // waits like the first one's, so worker 2 takes every new connection on the second port too.
  const { cluster, lagging, healthy, holds } = await laggingCluster(t, 'lags-then-listens.js');
  const second = await cluster.waitForLine((line) => line.worker === 1 && line.message.startsWith('second '), 15_000);
  const port = Number(second.message.split(' ')[1]);
  t.not(port, cluster.port);
  await inOneOfThreeWindows(t, async () => {
    const miss = await onlyHealthyAnswers(port, healthy);
    if (miss !== null) return miss;
    if (listenerHolders(port, [cluster.masterPid, lagging, healthy]).includes(lagging)) return 'worker 1 holds a copy of the second socket';
    return holds(lagging) ? 'worker 1 holds a copy of the first' : null;
  });
});

test('fair: a worker whose loop lagged accepts again once it has kept time for a second', async (t) => {
  // Worker 1 blocks six times, then keeps time: a second after its last block it says so and is sent a copy again.
  const { cluster, lagging, holds } = await laggingCluster(t, 'lags-then-recovers.js');
  await waitFor(() => holds(lagging), { what: 'worker 1 to accept again', timeoutMs: 15_000 });
  await waitFor(async () => (await pidOfNewConnection(cluster.port)) === lagging, { what: 'a new connection answered by worker 1' });
  t.pass();
});

test('fair: a worker whose loop lags still gets its even share of a keep-alive burst (the other stops at the limit)', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('lags-worker-1.js'), { instances: 2, flags: ['--name', 'fairlag', '--watchdog', '30s'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const workers = await ctl.workers('fairlag');
  const lagging = workers.find((worker) => worker.id === 1)!.pid;
  const healthy = workers.find((worker) => worker.id === 2)!.pid;
  // Worker 1 blocks 120 ms every 300 ms. It takes no new connection while worker 2 can, but the
  // limit holds worker 2 to an even share of a burst of keep-alive connections, which then wait for
  // worker 1 (at most one block), as they would with no balancer: pausing a lagging worker outright
  // put a whole pool on the other worker and made (e)'s tail worse (BENCHMARKS.md).
  await waitFor(async () => ((await ctl.workers('fairlag')).find((worker) => worker.id === 1)!.lag?.p99 ?? 0) >= 100, { what: 'worker 1 lagging', timeoutMs: 10_000 });
  // In one of three bursts: on a loaded machine the healthy worker lags too at times, and then the
  // lagging one's turn comes late (16/24 once, on CI under Node 24). Each burst starts from none open.
  await inOneOfThreeWindows(t, async () => {
    const { pids, close } = await burst(cluster.port, 40);
    close();
    const [slow, fast] = split(pids, [lagging, healthy]);
    t.log(`split ${slow}/${fast}`);
    await waitFor(async () => (await ctl.workers('fairlag')).every((worker) => worker.connections === 0), { what: 'the burst\'s connections closed', timeoutMs: 15_000 });
    return Math.abs(slow! - fast!) <= 4 ? null : `split ${slow}/${fast}`;
  });
});

type Pool = { round: () => Promise<void>; split: (workers: readonly number[]) => number[]; opened: () => number; close: () => void };

/**
 * A client pool of `size` keep-alive connections that opens a new one only when one closes, as
 * database and proxy pools do: `round()` sends one request on each, at once; `split()` says which
 * worker holds each open connection (from the pid that last answered on it). `tls`: over https,
 * trusting any certificate.
 */
function pool(port: number, size: number, tls = false): Pool {
  const agent = tls ? new https.Agent({ keepAlive: true, maxSockets: size, rejectUnauthorized: false }) : new http.Agent({ keepAlive: true, maxSockets: size });
  const get = tls ? https.get : http.get;
  const holder = new Map<object, number>();
  let opened = 0;
  const request = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const sent = get({ host: '127.0.0.1', port, agent, path: '/', timeout: 10_000 }, (response) => {
        const { socket } = response;
        if (!holder.has(socket)) {
          opened++;
          socket.once('close', () => holder.delete(socket));
        }
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => {
          if (!socket.destroyed) holder.set(socket, (JSON.parse(body) as { pid: number }).pid);
          resolve();
        });
      });
      sent.on('timeout', () => sent.destroy(new Error('pool request timed out')));
      sent.on('error', reject);
    });
  return {
    round: async () => {
      await Promise.all(Array.from({ length: size }, request));
    },
    split: (workers) => workers.map((worker) => [...holder.values()].filter((pid) => pid === worker).length),
    opened: () => opened,
    close: () => agent.destroy(),
  };
}

/** Sends rounds on `clients` until its `size` connections are within 4 of even over `workers`; the split and the rounds it took. */
async function untilEven(clients: Pool, size: number, workers: () => Promise<number[]>): Promise<{ split: number[]; rounds: number }> {
  let rounds = 0;
  let last: number[] = [];
  await waitFor(
    async () => {
      await clients.round();
      rounds++;
      last = clients.split(await workers());
      return last.reduce((sum, count) => sum + count, 0) === size && Math.max(...last) - Math.min(...last) <= 4;
    },
    { timeoutMs: 30_000, what: 'the pool spread over every worker' },
  );
  return { split: last, rounds };
}

/**
 * Rounds until `ms` have passed, polled 100 ms apart (not to flood a small machine); how many
 * connections the pool opened meanwhile.
 */
async function reopenedOver(clients: Pool, ms: number): Promise<{ reopened: number; rounds: number }> {
  const before = clients.opened();
  const until = Date.now() + ms;
  let rounds = 0;
  await waitFor(
    async () => {
      await clients.round();
      rounds++;
      return Date.now() >= until;
    },
    { timeoutMs: ms + 30_000, intervalMs: 100, what: `rounds for ${ms} ms` },
  );
  return { reopened: clients.opened() - before, rounds };
}

/** Starts protocols.js (http, and https with a throwaway certificate) as a named cluster; the port of `scheme`. */
async function protocols(t: ExecutionContext, name: string, instances: number, scheme: 'http' | 'https'): Promise<{ cluster: Cluster; port: number; ctl: Control }> {
  const ctl = control(t);
  const { key, cert } = await selfSignedCert(t);
  const cluster = await startCluster(fixture('protocols.js'), { instances, flags: ['--name', name], env: { ...ctl.env, HTTPS_KEY: key, HTTPS_CERT: cert } });
  t.teardown(() => cluster.stop('SIGKILL'));
  const ports = await cluster.waitForLine((line) => line.message.startsWith('ports '));
  return { cluster, port: (JSON.parse(ports.message.slice('ports '.length)) as Record<string, number>)[scheme]!, ctl };
}

const workerPids = (ctl: Control, name: string) => async (): Promise<number[]> => (await ctl.workers(name)).map((worker) => worker.pid);

for (const scheme of ['http', 'https'] as const) {
  test(`fair: a keep-alive pool on one worker spreads over a worker added later (one over an even share plus slack ends connections down to it, after their response), over ${scheme}`, async (t) => {
    const name = `fairspread${scheme}`;
    const { cluster, port, ctl } = await protocols(t, name, 1, scheme);
    const clients = pool(port, 24, scheme === 'https');
    t.teardown(clients.close);
    await clients.round();
    t.deepEqual(clients.split(cluster.pids), [24]);

    const scaled = await ctl.run(['scale', name, '2']);
    t.is(scaled.exitCode, 0, String(scaled.stderr));
    // Without help the pool would stay on the first worker for good: it opens no connection while its
    // own are open. Requests keep coming on them, and the first worker ends the 10 it holds past an
    // even 12 plus slack, after their responses: the pool reopens them, and the new worker takes them.
    const { split, rounds } = await untilEven(clients, 24, workerPids(ctl, name));
    t.log(`after ${rounds} rounds: ${split.join('/')}, ${clients.opened()} connections opened in all`);
    // Only the surplus was ended (10; a couple more if a reconnect landed on the first worker), never one per request.
    t.true(clients.opened() <= 24 + 16, `${clients.opened()} connections opened`);
    // And once even, the pool keeps its connections, also past the 5 s over which the master counts
    // the most connections held.
    const even = await reopenedOver(clients, 6_000);
    t.true(even.reopened <= 2, `${even.reopened} more connections in ${even.rounds} even rounds`);
  });
}

test('fair: a keep-alive pool under load through a rolling reload fails no request and ends within 4 of even on the new workers', async (t) => {
  const { port, ctl } = await protocols(t, 'fairreload', 2, 'http');
  const clients = pool(port, 24);
  t.teardown(clients.close);
  // Rounds run all through the reload: each old worker's connections end as it drains and reopen
  // where the limit lets them, on the new worker under it rather than on the old one still up (whose
  // connections, kept, would then all end at once when its turn came).
  let running = true;
  let rounds = 0;
  const load = (async () => {
    for (; running; rounds++) await clients.round();
  })();
  const reload = await ctl.run(['reload', 'fairreload']);
  running = false;
  await load;
  t.is(reload.exitCode, 0, String(reload.stderr));
  const workers = await workerPids(ctl, 'fairreload')();
  t.log(`${rounds} rounds through the reload; then ${clients.split(workers).join('/')} on the new workers`);
  const { split, rounds: after } = await untilEven(clients, 24, workerPids(ctl, 'fairreload'));
  t.log(`after ${after} more rounds: ${split.join('/')}, ${clients.opened()} connections opened in all`);
  const even = await reopenedOver(clients, 6_000);
  t.true(even.reopened <= 2, `${even.reopened} more connections in ${even.rounds} even rounds`);
});

test('fair: a worker added by a scale-up gets its share of a keep-alive pool that sat within slack of even on the others (16 on 2, scale 3: it stayed 8/8/0)', async (t) => {
  const { port, ctl } = await protocols(t, 'fairjoin', 2, 'http');
  const clients = pool(port, 16);
  t.teardown(clients.close);
  await clients.round();
  t.deepEqual(clients.split(await workerPids(ctl, 'fairjoin')()), [8, 8]);

  const scaled = await ctl.run(['scale', 'fairjoin', '3']);
  t.is(scaled.exitCode, 0, String(scaled.stderr));
  // 8 is an even 6 plus slack, so neither old worker is over the level it is asked down to from
  // above; the new worker, far below an even share, is what makes them end the rest.
  let counts: number[] = [];
  await waitFor(
    async () => {
      await clients.round();
      const workers = await ctl.workers('fairjoin');
      counts = workers.map((worker) => worker.connections ?? 0);
      return workers.length === 3 && counts.reduce((sum, count) => sum + count, 0) === 16 && Math.min(...counts) >= 3 && Math.max(...counts) - Math.min(...counts) <= 4;
    },
    { timeoutMs: 20_000, intervalMs: 100, what: 'the new worker holding its share of the pool' },
  );
  t.log(`${counts.join('/')} by status, ${clients.opened()} connections opened in all`);
  t.true(clients.opened() <= 16 + 8, `${clients.opened()} connections opened`);
  // And once spread, it stays: nothing ping-pongs.
  const even = await reopenedOver(clients, 6_000);
  t.true(even.reopened <= 2, `${even.reopened} more connections in ${even.rounds} even rounds`);
});
