// `-i max` on a container's CPU limit: the cgroup quota, read from v2's cpu.max or v1's
// cfs_quota/cfs_period, lowers the CPU count (whole CPUs, at least 1), at any level of the cgroup's
// ancestry. Each case is a tree of its own standing for `/`.
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cgroupCpuQuota, usableCpus } from '../../src/system/cpus.js';

/** A root with these files (path: content). */
function tree(t: import('ava').ExecutionContext, files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'clusterd-cgroup-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

const quota = test.macro({
  exec(t, files: Record<string, string>, expected: number | null) {
    t.is(cgroupCpuQuota(tree(t, files)), expected);
  },
  title: (title = '') => `cgroup quota: ${title}`,
});

test('v2 in a container (cgroup namespace: path /), 2 CPUs', quota, { 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/cpu.max': '200000 100000\n' }, 2);
test('v2, no limit', quota, { 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/cpu.max': 'max 100000\n' }, null);
test(
  'v2, the smallest of the ancestry (the pod 1.5, its container none): 1',
  quota,
  {
    'proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
    'sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': 'max 100000\n',
    'sys/fs/cgroup/kubepods/pod1/cpu.max': '150000 100000\n',
    'sys/fs/cgroup/kubepods/cpu.max': '800000 100000\n',
  },
  1,
);
test('v2, half a CPU is still one worker', quota, { 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/cpu.max': '50000 100000\n' }, 1);
test(
  'v1 (Docker on an older host), 4 CPUs',
  quota,
  {
    'proc/self/cgroup': '12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n',
    'sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '400000\n',
    'sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n',
  },
  4,
);
test(
  'v1, no limit (-1)',
  quota,
  {
    'proc/self/cgroup': '4:cpu,cpuacct:/\n',
    'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
    'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
  },
  null,
);
test('no cgroup files (not Linux, nothing mounted)', quota, {}, null);
test('garbage in cpu.max', quota, { 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/cpu.max': 'lots\n' }, null);

test('usable CPUs: the affinity, lowered to the quota, never raised by it', (t) => {
  const limited = tree(t, { 'proc/self/cgroup': '0::/\n', 'sys/fs/cgroup/cpu.max': '200000 100000\n' });
  t.deepEqual(usableCpus(limited, 32), { cpus: 2, available: 32, quota: 2 });
  t.deepEqual(usableCpus(limited, 1), { cpus: 1, available: 1, quota: 2 });
  t.deepEqual(usableCpus(tree(t, {}), 8), { cpus: 8, available: 8, quota: null });
});
