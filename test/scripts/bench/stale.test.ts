// What a run killed with SIGKILL leaves behind, and what the next run removes: only what belongs to a
// run that is gone, so that two runs in one checkout (on two ports) leave each other alone.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { leftBehind, ownerOf, removeStaleScratch, stopStaleClusters } from '../../../scripts/bench/stale.js';
import { benchPaths, countFiles } from '../../../scripts/bench/systems.js';

const root = path.resolve(import.meta.dirname, '..', '..', '..');

/** The pid of a process that has exited (and been reaped): a run killed -9. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid!;
}

/** A process that runs until the test ends: a run still going. */
function liveProcess(t: { teardown(fn: () => void): void }): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  return child;
}

test('leftovers are known by the pid in their names', (t) => {
  t.is(ownerOf('counts-123-4', 'scratch'), 123);
  t.is(ownerOf('herd-123-4', 'scratch'), 123);
  t.is(ownerOf('workload-a.lua', 'scratch'), undefined);
  t.is(ownerOf('pm2-home-77', 'pm2'), 77);
  t.is(ownerOf('bench-55-2', 'cluster'), 55);
  t.is(ownerOf('my-app', 'cluster'), undefined);
  t.false(leftBehind(`counts-${process.pid}-1`, 'scratch', () => false), 'this run\'s own');
  t.true(leftBehind('counts-123-1', 'scratch', () => false));
  t.false(leftBehind('counts-123-1', 'scratch', () => true));
});

test('only the count folders of runs that are gone are removed', async (t) => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-scratch-'));
  t.teardown(() => fs.rmSync(scratch, { recursive: true, force: true }));
  const dead = await deadPid();
  const live = liveProcess(t).pid!;
  for (const name of [`counts-${dead}-1`, `counts-${live}-1`, `counts-${process.pid}-2`]) fs.mkdirSync(path.join(scratch, name));
  fs.writeFileSync(path.join(scratch, 'workload-a.lua'), '');
  // Before, every counts-* folder went, and the other run crashed reading its own.
  t.deepEqual(removeStaleScratch(scratch), [`counts-${dead}-1`]);
  t.deepEqual(fs.readdirSync(scratch).sort(), [`counts-${live}-1`, `counts-${process.pid}-2`, 'workload-a.lua'].sort());
});

test('a count folder that went missing is one clear error, not a bare ENOENT', (t) => {
  t.throws(() => countFiles(path.join(os.tmpdir(), `counts-${process.pid}-missing`)), { message: /count folder counts-\d+-missing is gone/ });
});

test('each run has a PM2 home of its own', (t) => {
  t.is(path.basename(benchPaths(root).pm2Home), `pm2-home-${process.pid}`);
});

test('clusters left by a run that is gone are stopped; a running run\'s stay', async (t) => {
  const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-stale-'));
  t.teardown(() => fs.rmSync(runtime, { recursive: true, force: true }));
  const paths = benchPaths(root);
  const env = { ...process.env, CLUSTERD_RUNTIME_DIR: runtime, BENCH_PORT: '0' };
  const clusterd = (...args: string[]) => execFileSync(paths.node, [paths.clusterd, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  const gone = `bench-${await deadPid()}-1`;
  const running = `bench-${liveProcess(t).pid}-1`;
  for (const name of [gone, running]) clusterd('start', paths.app, '-i', '1', '--name', name, '-d');
  t.teardown(() => {
    try {
      clusterd('stop', '--all');
    } catch {
      // stopped already
    }
  });
  const before = process.env.CLUSTERD_RUNTIME_DIR;
  process.env.CLUSTERD_RUNTIME_DIR = runtime;
  try {
    t.deepEqual(stopStaleClusters(paths), [gone]);
  } finally {
    if (before === undefined) delete process.env.CLUSTERD_RUNTIME_DIR;
    else process.env.CLUSTERD_RUNTIME_DIR = before;
  }
  const left = (JSON.parse(clusterd('ls', '--json')) as Array<{ name: string }>).map((cluster) => cluster.name);
  t.deepEqual(left, [running]);
  // Stopped gracefully: its control socket is gone with it.
  t.false(fs.readdirSync(runtime, { recursive: true }).some((name) => String(name).endsWith(`${gone}.sock`)));
});
