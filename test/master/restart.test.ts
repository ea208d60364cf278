// Issue 2, point 6: a worker that exits unexpectedly is replaced (new pid, same id); an app that
// cannot boot stops the master with exit code 3 after --max-boot-failures tries, while a worker
// that crashes after it was ready is restarted without counting as a boot failure.
// The backoff and the state machine have unit tests in test/unit/.
import test from 'ava';
import { ExitCode } from '../../src/exit-codes.js';
import { fixture, get, isRunning, killOnTeardown, launch, startCluster, waitFor, type Cluster, type OutputLine } from '../helpers/cluster.js';

interface Answer {
  worker: number;
  pid: number;
}

const ask = async (cluster: Cluster): Promise<Answer> => JSON.parse((await get(cluster.port)).body) as Answer;

/** Asks until worker `id` answers from a pid not in `old`; returns that answer. */
const replacementOf = async (cluster: Cluster, id: number, old: number[]): Promise<Answer> =>
  (await waitFor(
    async () => {
      const answer = await ask(cluster);
      return answer.worker === id && !old.includes(answer.pid) ? answer : null;
    },
    { what: `a new pid answering as worker ${id}`, timeoutMs: 20_000 },
  ))!;

const exitsOf = (cluster: Cluster): OutputLine[] => cluster.lines.filter((line) => line.event === 'worker-exit');

const replaced = test.macro({
  async exec(t, how: 'exit(1)' | 'SIGKILL') {
    const cluster = await startCluster(fixture('crash-route.js'), { instances: 2 });
    killOnTeardown(t, cluster.process);
    const ready = cluster.lines.find((line) => line.event === 'ready')!.workers as { id: number; pid: number }[];

    let victim: Answer;
    if (how === 'SIGKILL') {
      victim = { worker: ready[0]!.id, pid: ready[0]!.pid };
      process.kill(victim.pid, 'SIGKILL');
    } else {
      // The worker dies before it answers: the request itself fails. Either worker may take it.
      await t.throwsAsync(get(cluster.port, '/crash'));
      const id = (await cluster.waitForLine((line) => line.event === 'worker-exit')).worker as number;
      victim = { worker: id, pid: ready.find((worker) => worker.id === id)!.pid };
    }

    const exit = await cluster.waitForLine((line) => line.event === 'worker-exit');
    t.is(exit.worker, victim.worker);
    if (how === 'SIGKILL') t.is(exit.signal, 'SIGKILL');
    else t.is(exit.code, 1);

    const replacement = await replacementOf(cluster, victim.worker, cluster.pids);
    t.not(replacement.pid, victim.pid);
    t.false(isRunning(victim.pid));
    t.is(exitsOf(cluster).length, 1);
    t.false(cluster.lines.some((line) => line.event === 'fatal' || line.event === 'boot-failed'));
    t.is(await cluster.stop(), ExitCode.OK);
  },
  title: (_title, how: string) => `a worker that dies by ${how} is replaced by a new pid with the same id, which serves`,
});
test(replaced, 'exit(1)');
test(replaced, 'SIGKILL');

test('crashes after ready are restarted and never count as boot failures', async (t) => {
  // With --max-boot-failures 1, a single crash counted as a boot failure would stop the master.
  const cluster = await startCluster(fixture('crash-route.js'), { instances: 1, flags: ['--max-boot-failures', '1'] });
  killOnTeardown(t, cluster.process);
  const seen = [...cluster.pids];
  for (let crash = 1; crash <= 3; crash++) {
    await t.throwsAsync(get(cluster.port, '/crash'));
    await waitFor(() => exitsOf(cluster).length === crash, { what: `worker-exit #${crash}` });
    const replacement = await replacementOf(cluster, 1, seen);
    seen.push(replacement.pid);
  }
  t.is(new Set(seen).size, 4);
  t.is(cluster.process.exitCode, null);
  t.deepEqual(
    exitsOf(cluster).map((line) => [line.worker, line.code]),
    [
      [1, 1],
      [1, 1],
      [1, 1],
    ],
  );
  t.false(cluster.lines.some((line) => line.event === 'fatal' || line.event === 'boot-failed'));
  t.is(await cluster.stop(), ExitCode.OK);
});

const bootFailure = test.macro({
  async exec(t, file: string, maxBootFailures: number, reason: string[]) {
    const master = launch(['start', fixture(file), '-i', '1', '--max-boot-failures', String(maxBootFailures), '--log-format', 'json']);
    killOnTeardown(t, master.process);
    t.is(await master.exited, ExitCode.BOOT_FAILED);

    // One worker at a time: exactly maxBootFailures attempts, each a distinct process.
    const attempts = new Set(master.lines.filter((line) => line.stream === 'stderr').map((line) => line.pid));
    t.is(attempts.size, maxBootFailures);
    t.is(master.lines.filter((line) => line.event === 'boot-failed').length, maxBootFailures - 1);
    t.false(master.lines.some((line) => line.event === 'ready'));

    const fatal = master.lines.filter((line) => line.event === 'fatal');
    t.is(fatal.length, 1);
    t.is(fatal[0]!.code, 'ERR_CLUSTERD_BOOT');
    t.true(fatal[0]!.message.includes(`${maxBootFailures} times in a row`), fatal[0]!.message);
    for (const words of reason) t.true(fatal[0]!.message.includes(words), fatal[0]!.message);
    t.false(fatal[0]!.message.includes('\n'));
    // The app's last error output comes with it.
    t.true((fatal[0]!.lastOutput as string[]).some((line) => line.includes(reason.at(-1)!)));
    t.is(master.lines.at(-1)!.event, 'stopped');
  },
  title: (_title, file: string, maxBootFailures: number) => `${file}: exit code 3 after --max-boot-failures ${maxBootFailures} failed boots`,
});
test(bootFailure, 'throws-at-start.js', 2, ['Error: cannot reach the database at db.invalid:5432']);
test(bootFailure, 'throws-at-start.js', 3, ['Error: cannot reach the database at db.invalid:5432']);
test(bootFailure, 'exits-before-ready.js', 2, ['exited with code 9 before it was ready', 'missing required setting DATABASE_URL']);
