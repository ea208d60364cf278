// The master's own resources: its memory and CPU for `status`, and the figures of Prometheus's standard
// process metrics for /metrics (https://prometheus.io/docs/instrumenting/writing_clientlibs/#process-metrics).
// Read here rather than through prom-client, which clusterd does not depend on: on Linux, as prom-client
// does, /proc/self/status (VmSize, VmData), /proc/self/limits and a readdir of /proc/self/fd, a few
// microseconds of procfs each scrape; CPU time from process.cpuUsage(), finer than /proc/self/stat's ticks.
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** What `status` says of the master process itself. */
export interface MasterUsage {
  /** Resident set size, in bytes. */
  rss: number;
  /** V8 heap in use and allocated, in bytes. */
  heapUsed: number;
  heapTotal: number;
  /** CPU time (user + system) since the process started, in seconds. */
  cpuSeconds: number;
}

/** The figures of the standard process metrics; a field is absent where this platform does not tell it. */
export interface ProcessMetrics extends MasterUsage {
  startTimeSeconds: number;
  virtualBytes?: number;
  /** VmData: the data segment, heap included, as prom-client's process_heap_bytes. */
  heapBytes?: number;
  openFds?: number;
  /** The soft limit on open files; absent when unlimited. */
  maxFds?: number;
}

/** The master's memory and CPU, as `status` carries them. */
export function masterUsage(): MasterUsage {
  const { rss, heapUsed, heapTotal } = process.memoryUsage();
  const { user, system } = process.cpuUsage();
  return { rss, heapUsed, heapTotal, cpuSeconds: (user + system) / 1e6 };
}

/** This process's figures (`usage`: as the status it goes with read them); off Linux (or without /proc) only what Node itself tells. */
export function readProcessMetrics(usage: MasterUsage): ProcessMetrics {
  // performance.timeOrigin is fixed when the process starts: no jitter between scrapes, no wall-clock step.
  const own: ProcessMetrics = { ...usage, startTimeSeconds: performance.timeOrigin / 1000 };
  if (process.platform !== 'linux') return own;
  const status = readProc('/proc/self/status');
  const virtualKiB = status === null ? undefined : field(status, /^VmSize:\s+(\d+) kB$/m);
  const dataKiB = status === null ? undefined : field(status, /^VmData:\s+(\d+) kB$/m);
  const limits = readProc('/proc/self/limits');
  const maxFds = limits === null ? undefined : field(limits, /^Max open files\s+(\d+)/m);
  const openFds = countOpenFds();
  return {
    ...own,
    ...(virtualKiB !== undefined && { virtualBytes: virtualKiB * 1024 }),
    ...(dataKiB !== undefined && { heapBytes: dataKiB * 1024 }),
    ...(openFds !== undefined && { openFds }),
    ...(maxFds !== undefined && { maxFds }),
  };
}

function readProc(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null; // no procfs mounted (a bare container, a sandbox): those series are left out
  }
}

function field(text: string, pattern: RegExp): number | undefined {
  const match = pattern.exec(text);
  return match ? Number(match[1]) : undefined;
}

function countOpenFds(): number | undefined {
  try {
    // The listing holds the descriptor readdir opened on /proc/self/fd itself: not one of the process's.
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}
