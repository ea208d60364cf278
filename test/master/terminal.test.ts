// Every worker leads a process group of its own; with the native helper it stays in the master's
// session (sessions cost speed under autogroup scheduling), without it it gets a session of its own
// (see ownSession in src/master/worker.ts). On a terminal a Ctrl-C (SIGINT to the terminal's
// foreground process group) must reach the master alone, which drains them.
import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CLI, fixture, get, isRunning, killOnTeardown, startCluster, waitFor, type OutputLine } from '../helpers/cluster.js';
import { nativeHelper } from '../../src/system/native.js';

/** The process group and session of a live process, from /proc/<pid>/stat. */
function ids(pid: number): { pgrp: number; session: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state ppid pgrp session ...
  const [, , pgrp, session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pgrp: Number(pgrp), session: Number(session) };
}

test(`each worker leads a process group of its own, ${nativeHelper() ? 'in the master\'s session (native helper built)' : 'in a session of its own (no native helper)'}`, async (t) => {
  const cluster = await startCluster(fixture('hello.js'), { instances: 2 });
  killOnTeardown(t, cluster.process);
  const master = ids(cluster.masterPid);
  for (const pid of cluster.pids) {
    t.is(ids(pid).pgrp, pid);
    if (nativeHelper()) t.is(ids(pid).session, master.session);
    else t.is(ids(pid).session, pid);
  }
  t.is(await cluster.stop(), 0);
});

test('on a terminal, Ctrl-C reaches the master alone, which drains the workers', async (t) => {
  // script(1) runs the master on a pseudo-terminal of its own, as its controlling terminal. It
  // starts the command with $SHELL -c; `exec` makes the master that shell's own process, as in a
  // terminal session. Without it, dash (Debian's sh) would be in the foreground process group too,
  // die of the SIGINT, and make script exit 130.
  const runtime = mkdtempSync(join(tmpdir(), 'clusterd-test-'));
  t.teardown(() => rmSync(runtime, { recursive: true, force: true }));
  const command = [process.execPath, CLI, 'start', fixture('slow-routes.js'), '-i', '2', '--log-format', 'json', '--grace', '30s'];
  const child = execa('script', ['-qfec', `exec ${command.map((word) => `'${word}'`).join(' ')}`, '/dev/null'], {
    env: { CLUSTERD_RUNTIME_DIR: runtime, SLOW_MS: '1000', SHELL: '/bin/sh' },
    reject: false,
    buffer: false,
    stdin: 'ignore',
  });
  killOnTeardown(t, child);
  const lines: OutputLine[] = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text.replace(/\r$/, '')) as OutputLine);
    } catch {
      // the terminal echoes ^C and the like
    }
  });
  const line = (what: string, match: (line: OutputLine) => boolean) => waitFor(() => lines.find(match), { what, timeoutMs: 20_000 });

  const ready = await line('the ready event', (entry) => entry.event === 'ready');
  const masterPid = ready.masterPid as number;
  const port = Number((ready.addresses as string[])[0]!.split(':').pop());
  const pids = (ready.workers as { pid: number }[]).map((worker) => worker.pid);
  const master = ids(masterPid);
  for (const pid of pids) t.not(ids(pid).pgrp, master.pgrp);

  const slow = get(port, '/slow');
  await line('the slow request in flight', (entry) => entry.stream === 'stdout' && entry.message.startsWith('slow request started'));
  // What the terminal does on Ctrl-C: SIGINT to its foreground process group, the master's.
  process.kill(-master.pgrp, 'SIGINT');

  // A worker killed by the SIGINT would reset this request.
  const response = await slow;
  t.is(response.status, 200);
  t.is((await child).exitCode, 0);
  t.deepEqual(
    pids.filter((pid) => isRunning(pid)),
    [],
  );
});
