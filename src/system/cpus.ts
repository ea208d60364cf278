// How many workers `-i max` means: one per CPU this process may use. os.availableParallelism()
// counts the CPUs it may run on (its affinity), but on Node 20 (libuv < 1.49) not a cgroup's CPU
// quota: in a container limited to 2 CPUs on a 32-core node (Kubernetes `limits.cpu: 2`, docker
// --cpus=2) it says 32, and 32 workers share 2 CPUs' worth of time, throttled, with 32 heaps. So
// the quota is read here too, as newer libuv and Rust's available_parallelism() do: the smallest
// `quota / period` (whole CPUs, at least 1) of the process's cgroup and its ancestors, cgroup v2's
// cpu.max or v1's cpu.cfs_quota_us and cpu.cfs_period_us. No quota, or files that cannot be read
// (not Linux, no cgroup mounted): no limit.
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

/** Where cgroup v1 mounts the cpu controller, in the usual layouts (Docker, systemd). */
const V1_MOUNTS = ['sys/fs/cgroup/cpu,cpuacct', 'sys/fs/cgroup/cpu', 'sys/fs/cgroup/cpuacct,cpu'];

export interface CpuCount {
  /** The CPUs to run on: the affinity, lowered to the quota. */
  cpus: number;
  /** os.availableParallelism(). */
  available: number;
  /** The cgroup quota in whole CPUs, or null without one. */
  quota: number | null;
}

/** The CPUs this process may use; `root` stands for `/` (tests give a tree of their own). */
export function usableCpus(root = '/', available = availableParallelism()): CpuCount {
  const quota = cgroupCpuQuota(root);
  return { cpus: quota === null ? available : Math.max(1, Math.min(available, quota)), available, quota };
}

/** The cgroup CPU quota of this process in whole CPUs (at least 1), or null when it has none. */
export function cgroupCpuQuota(root = '/'): number | null {
  const membership = read(join(root, 'proc/self/cgroup'));
  if (membership === null) return null;
  let smallest: number | null = null;
  const lower = (quota: number | null): void => {
    if (quota !== null && (smallest === null || quota < smallest)) smallest = quota;
  };
  for (const line of membership.split('\n')) {
    // hierarchy-id:controllers:path; v2 is `0::/path`.
    const match = /^(\d+):([^:]*):(\/.*)$/.exec(line.trim());
    if (!match) continue;
    const [, id, controllers, path] = match as unknown as [string, string, string, string];
    if (id === '0' && controllers === '') {
      for (const dir of upFrom(join(root, 'sys/fs/cgroup'), path)) lower(v2Quota(dir));
    } else if (controllers.split(',').includes('cpu')) {
      for (const mount of V1_MOUNTS) for (const dir of upFrom(join(root, mount), path)) lower(v1Quota(dir));
    }
  }
  return smallest;
}

/**
 * The cgroup's directory and each of its parents up to the mount. Inside a container's cgroup
 * namespace the path is `/` and the mount shows the container's own cgroup; outside one, the path
 * is the whole one under the mount.
 */
function upFrom(mount: string, path: string): string[] {
  const dirs: string[] = [];
  for (let current = posix.normalize(path); ; current = posix.dirname(current)) {
    dirs.push(join(mount, current));
    if (current === '/' || current === '.') return dirs;
  }
}

/** cpu.max: `max 100000` (none) or `200000 100000` (2 CPUs). */
function v2Quota(dir: string): number | null {
  const text = read(join(dir, 'cpu.max'));
  const match = text === null ? null : /^(\d+)\s+(\d+)/.exec(text.trim());
  return match ? whole(Number(match[1]), Number(match[2])) : null;
}

/** cpu.cfs_quota_us (-1: none) over cpu.cfs_period_us. */
function v1Quota(dir: string): number | null {
  const quota = Number(read(join(dir, 'cpu.cfs_quota_us'))?.trim() ?? NaN);
  const period = Number(read(join(dir, 'cpu.cfs_period_us'))?.trim() ?? NaN);
  return quota > 0 ? whole(quota, period) : null;
}

function whole(quota: number, period: number): number | null {
  if (!(quota > 0 && period > 0)) return null;
  return Math.max(1, Math.floor(quota / period));
}

function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}
