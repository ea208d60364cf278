// Issue 2, tests section: under a bounded load (autocannon, 64 connections, a new connection per
// request, ~4 s) against 2 workers (fair, the default, and rr), SIGKILL one worker: the master stays
// up, the worker is replaced (same id, new pid), and only requests in flight on the killed worker may fail.
import test from 'ava';
import autocannon from 'autocannon';
import { ExitCode } from '../../src/exit-codes.js';
import { fixture, get, isRunning, killOnTeardown, startCluster, waitFor } from '../helpers/cluster.js';

const CONNECTIONS = 64;
// Responses seen before the kill: the load is well under way, and most of it is still to come.
const KILL_AFTER_RESPONSES = 100;

for (const mode of ['fair', 'rr']) {
  test(`SIGKILL of one ${mode} worker under load: master stays up, worker replaced, only in-flight requests fail`, async (t) => {
    const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--balance', mode] });
    killOnTeardown(t, cluster.process);
    const ready = cluster.lines.find((line) => line.event === 'ready')!.workers as { id: number; pid: number }[];
    const victim = ready[0]!;

    let responses = 0;
    let responsesAtKill: number | null = null;
    const result = await new Promise<autocannon.Result>((resolve, reject) => {
      const instance = autocannon(
        {
          url: `http://127.0.0.1:${cluster.port}/`,
          connections: CONNECTIONS,
          duration: 4,
          // Each request on a new connection, so a dead worker takes only its in-flight ones with it.
          headers: { connection: 'close' },
        },
        (error, outcome) => (error ? reject(error as Error) : resolve(outcome)),
      );
      t.teardown(() => instance.stop());
      instance.on('response', () => {
        responses++;
        if (responsesAtKill === null && responses >= KILL_AFTER_RESPONSES) {
          responsesAtKill = responses;
          process.kill(victim.pid, 'SIGKILL');
        }
      });
    });

    const failed = result.errors + result.timeouts + result.non2xx;
    t.log(`${result.requests.total} requests, ${result['2xx']} 2xx; killed after ${responsesAtKill}; failed: ${failed} (errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx})`);
    t.not(responsesAtKill, null, 'the load ended before the kill');
    t.true(result['2xx'] > responsesAtKill!, 'nothing was served after the kill');
    t.true(failed <= CONNECTIONS, `${failed} failed requests`);

    // The master is up and did not give up; the killed worker's slot was refilled.
    t.is(cluster.process.exitCode, null);
    t.true(isRunning(cluster.masterPid));
    t.false(cluster.lines.some((line) => line.event === 'fatal' || line.event === 'stopped'));
    const exits = cluster.lines.filter((line) => line.event === 'worker-exit');
    t.deepEqual(
      exits.map((line) => [line.worker, line.signal]),
      [[victim.id, 'SIGKILL']],
    );
    const replacement = (await waitFor(
      async () => {
        const answer = JSON.parse((await get(cluster.port)).body) as { worker: number; pid: number };
        return answer.worker === victim.id && answer.pid !== victim.pid ? answer : null;
      },
      { what: `a new pid answering as worker ${victim.id}`, timeoutMs: 20_000 },
    ))!;
    t.false(isRunning(victim.pid));
    t.true(isRunning(ready[1]!.pid));
    t.not(replacement.pid, ready[1]!.pid);
    t.is(await cluster.stop(), ExitCode.OK);
  });
}
