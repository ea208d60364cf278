// What a benchmark run killed with SIGKILL (or lost with its machine's power) leaves behind, and the
// next run's clean-up of it. Everything a run creates carries its pid: count folders
// `counts-<pid>-<n>` (and herd-, instruments-), its PM2 home `pm2-home-<pid>`, its clusters
// `bench-<pid>-<n>`. Only what belongs to a pid that is gone is removed, so a second run in the same
// checkout (on another --port) leaves the first one's alone.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Pm2Install } from './install.js';
import { isAlive } from './processes.js';
import { killPm2, type Paths } from './systems.js';

/** The pid a run's leftover is named after, or undefined when the name is not one of ours. */
export function ownerOf(name: string, kind: 'scratch' | 'pm2' | 'cluster'): number | undefined {
  const pattern = { scratch: /^(?:counts|herd|instruments)-(\d+)-\d+$/, pm2: /^pm2-home-(\d+)$/, cluster: /^bench-(\d+)-\d+$/ }[kind];
  const pid = pattern.exec(name)?.[1];
  return pid === undefined ? undefined : Number(pid);
}

/** True when `name` was left by a run that is no longer running. */
export function leftBehind(name: string, kind: 'scratch' | 'pm2' | 'cluster', alive: (pid: number) => boolean = isAlive): boolean {
  const pid = ownerOf(name, kind);
  return pid !== undefined && pid !== process.pid && !alive(pid);
}

/** Removes the count folders of runs that are gone from `scratch`; returns their names. */
export function removeStaleScratch(scratch: string): string[] {
  const stale = fs.readdirSync(scratch).filter((name) => leftBehind(name, 'scratch'));
  for (const name of stale) fs.rmSync(path.join(scratch, name), { recursive: true, force: true });
  return stale;
}

/**
 * Kills the PM2 daemons of runs that are gone and removes their homes. The shared `pm2-home` of
 * versions before one home per run has no owner to ask: its daemon is taken as left behind too.
 */
export function removeStalePm2(paths: Paths, pm2: Pm2Install): string[] {
  const stale = fs.readdirSync(paths.cache).filter((name) => name === 'pm2-home' || leftBehind(name, 'pm2'));
  for (const name of stale) {
    const pm2Home = path.join(paths.cache, name);
    killPm2({ ...paths, pm2Home }, pm2);
    fs.rmSync(pm2Home, { recursive: true, force: true });
  }
  return stale;
}

/**
 * Stops the clusterd clusters of runs that are gone (found with `clusterd ls` in the runtime
 * directory the benchmark's clusters use: this process's $CLUSTERD_RUNTIME_DIR or the default), so
 * that they free their ports. Returns the names stopped; a failure to list or stop is only reported.
 */
export function stopStaleClusters(paths: Paths, warn: (message: string) => void = () => {}): string[] {
  let clusters: Array<{ name: string }>;
  try {
    clusters = JSON.parse(execFileSync(paths.node, [paths.clusterd, 'ls', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 20_000 })) as Array<{ name: string }>;
  } catch (error) {
    warn(`could not list clusterd clusters left by earlier runs: ${String(error).split('\n')[0]}`);
    return [];
  }
  const stale = clusters.map((cluster) => cluster.name).filter((name) => leftBehind(name, 'cluster'));
  for (const name of stale) {
    try {
      // Graceful: the master stops its workers and removes its control socket. Its --grace is 5 s.
      execFileSync(paths.node, [paths.clusterd, 'stop', name], { stdio: 'ignore', timeout: 30_000 });
    } catch (error) {
      warn(`could not stop ${name}, left by an earlier run: ${String(error).split('\n')[0]}`);
    }
  }
  return stale;
}
