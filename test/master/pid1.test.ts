// clusterd as PID 1 of a PID namespace (`unshare --pid --fork`, as in a container without an init):
// the orphans an app leaves are reparented to the master, which reaps them when they end, and a
// SIGTERM stops the cluster as usual. Needs unshare(1) and the right to make a PID namespace (root).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { zombieChildren } from '../../src/master/orphans.js';
import { fixture, get, launch, waitFor } from '../helpers/cluster.js';

/** The children of `pid` in this (the host's) PID namespace, with their state and command name. */
function children(pid: number): { pid: number; state: string; comm: string }[] {
  let list: string;
  try {
    list = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
  } catch {
    return [];
  }
  return list
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .flatMap((child) => {
      try {
        const stat = readFileSync(`/proc/${child}/stat`, 'utf8');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        return [{ pid: Number(child), state: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!, comm }];
      } catch {
        return [];
      }
    });
}

test('zombieChildren reads /proc: this process has none', (t) => {
  t.deepEqual(zombieChildren(process.pid), []);
});

test('as PID 1, the master reaps the orphans the app leaves, and stops on SIGTERM', async (t) => {
  const master = launch(['start', fixture('leaves-orphans.js'), '-i', '1', '--log-format', 'json'], { wrap: ['unshare', '--pid', '--fork', '--kill-child', '--mount-proc'] });
  // --kill-child: should the test fail, killing unshare kills the master, PID 1 of its namespace,
  // and with it everything in the namespace (a master left behind would serve on forever).
  t.teardown(() => master.process.kill('SIGKILL'));
  const ready = await master.waitForLine((line) => line.event === 'ready', 30_000);
  t.is(ready.masterPid, 1, 'the master is PID 1 of its namespace');
  // unshare forks the master: its pid here is unshare's only child.
  // (Its command name is `node`, or `MainThread` from Node 24, which names its main thread.)
  const masterPid = await waitFor(() => children(master.process.pid!)[0]?.pid, { what: 'the master under unshare' });
  const port = Number((ready.addresses as string[])[0]!.split(':').pop());

  await get(port, '/orphans');
  // The shells exit at once: their sleeps are reparented to the master, then end 5 s after they started
  // (long enough to be seen here under the master, however loaded the machine).
  const adopted = await waitFor(() => children(masterPid).filter((child) => child.comm === 'sleep').length, { what: 'orphaned sleeps under the master' });
  t.true(adopted >= 1, `${adopted} orphans adopted by the master`);
  await waitFor(() => !children(masterPid).some((child) => child.comm === 'sleep' && child.state !== 'Z'), { timeoutMs: 20_000, what: 'the orphans to end' });
  await waitFor(() => zombieChildren(masterPid).length === 0, { timeoutMs: 5_000, what: 'no zombie left under the master' });
  t.deepEqual(children(masterPid).filter((child) => child.state === 'Z'), []);

  process.kill(masterPid, 'SIGTERM');
  t.is(await master.exited, 0);
  t.true(master.lines.some((line) => line.event === 'stopped'));
});
