// What `ls`, `status` and `top` print, as pure functions of what the control plane returned.
import type { LagSummary } from '../loop/types.js';
import type { BlockedView, ClusterView, WorkerView } from '../control/types.js';
import { blockedLines, blockedSiteLines } from './stack-view.js';
import {
  BOLD,
  DIM,
  LAG_WARN_MS,
  type Align,
  eluLevel,
  formatBytes,
  formatDuration,
  formatFraction,
  formatMs,
  formatPercent,
  formatRate,
  lagLevel,
  paint,
  sparkChar,
  style,
  table,
  truncate,
  visibleWidth,
} from './format.js';

/** One worker in `status --json`; the sample's fields are null until its first sample. */
export interface WorkerJson {
  id: number;
  pid: number;
  state: string;
  restarts: number;
  uptimeMs: number;
  /** Milliseconds. */
  lag: LagSummary | null;
  /** 0..1. */
  elu: number | null;
  /** Percent of one core. */
  cpu: number | null;
  /** Bytes. */
  rss: number | null;
  heapUsed: number | null;
  rps: number | null;
  inflight: number | null;
  connections: number | null;
  generation: number;
  /** The worker id's last blocked-loop episode (time epoch ms, blockedMs, frames innermost first), or null. */
  lastBlocked: BlockedView | null;
  /** Where --report-blocked caught its loop blocked over the last 5 minutes, worst first. */
  blockedSites: WorkerView['blockedSites'];
  /** Blocks caught since the master started. */
  blocks: number;
}

/** `status --json`: the cluster's fields, each worker flattened to the documented shape. */
export type StatusJson = Omit<ClusterView, 'workers'> & { workers: WorkerJson[] };

export function statusJson(status: ClusterView): StatusJson {
  return {
    name: status.name,
    workers: status.workers.map(workerJson),
    masterPid: status.masterPid,
    startedAt: status.startedAt,
    uptimeMs: status.uptimeMs,
    entry: status.entry,
    balance: status.balance,
    statsIntervalMs: status.statsIntervalMs,
    totals: { ...status.totals },
  };
}

function workerJson(worker: WorkerView): WorkerJson {
  const sample = worker.sample;
  return {
    id: worker.id,
    pid: worker.pid,
    state: worker.state,
    restarts: worker.restarts,
    uptimeMs: worker.uptimeMs,
    lag: sample ? { mean: sample.lag.mean, p50: sample.lag.p50, p90: sample.lag.p90, p99: sample.lag.p99, max: sample.lag.max } : null,
    elu: sample?.elu ?? null,
    cpu: sample?.cpu ?? null,
    rss: sample?.memory.rss ?? null,
    heapUsed: sample?.memory.heapUsed ?? null,
    rps: sample?.http.rps ?? null,
    inflight: sample?.http.inflight ?? null,
    connections: sample?.http.connections ?? null,
    generation: worker.generation,
    lastBlocked: worker.lastBlocked,
    blockedSites: worker.blockedSites,
    blocks: worker.blocks,
  };
}

const WORKER_HEADER = ['ID', 'PID', 'STATE', 'GEN', 'UPTIME', 'RESTARTS', 'REQ/S', 'CONNS', 'LAG p50', 'p99', 'max', 'ELU', 'CPU', 'RSS'];
const WORKER_ALIGN: Align[] = ['right', 'right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'];
const NONE = '-';

/** A worker's row: lag in ms; the sample's cells read `-` until its first sample. */
function workerCells(worker: WorkerView, colour: boolean): string[] {
  const sample = worker.sample;
  const fixed = [String(worker.id), String(worker.pid), worker.state, String(worker.generation), formatDuration(worker.uptimeMs), String(worker.restarts)];
  if (!sample) return [...fixed, ...Array<string>(WORKER_HEADER.length - fixed.length).fill(NONE)];
  const { lag } = sample;
  return [
    ...fixed,
    formatRate(sample.http.rps),
    String(sample.http.connections),
    paint(formatMs(lag.p50), lagLevel(lag.p50), colour),
    paint(formatMs(lag.p99), lagLevel(lag.p99), colour),
    paint(formatMs(lag.max), lagLevel(lag.max), colour),
    paint(formatFraction(sample.elu), eluLevel(sample.elu), colour),
    formatPercent(sample.cpu),
    formatBytes(sample.memory.rss),
  ];
}

/** `status`: a header line about the cluster, one row per worker, then any blocked-loop notes. */
export function statusLines(status: ClusterView): string[] {
  const blocked = [...blockedLines(status.workers), ...blockedSiteLines(status.workers)];
  return [
    summaryLine(status, false),
    '',
    ...table([WORKER_HEADER, ...status.workers.map((worker) => workerCells(worker, false))], WORKER_ALIGN),
    ...(blocked.length > 0 ? ['', ...blocked] : []),
  ];
}

function summaryLine(status: ClusterView, colour: boolean): string {
  const { totals } = status;
  return [
    style(status.name, BOLD, colour),
    `master ${status.masterPid}`,
    `up ${formatDuration(status.uptimeMs)}`,
    `${totals.ready}/${totals.workers} ready`,
    `${formatRate(totals.rps)} req/s`,
    `${totals.connections} conns`,
    `RSS ${formatBytes(totals.rss)}`,
    ...(totals.restarts > 0 ? [`${totals.restarts} restart${totals.restarts === 1 ? '' : 's'}`] : []),
  ].join('  ');
}

/** `ls --json`: one object per cluster. */
export interface ClusterListJson {
  name: string;
  masterPid: number;
  workers: number;
  ready: number;
  uptimeMs: number;
}

export function lsJson(clusters: readonly ClusterView[]): ClusterListJson[] {
  return clusters.map((status) => ({
    name: status.name,
    masterPid: status.masterPid,
    workers: status.totals.workers,
    ready: status.totals.ready,
    uptimeMs: status.uptimeMs,
  }));
}

/** `ls`: NAME, PID, WORKERS (ready/total), UPTIME. */
export function lsLines(clusters: readonly ClusterView[]): string[] {
  return table(
    [['NAME', 'PID', 'WORKERS', 'UPTIME'], ...lsJson(clusters).map((c) => [c.name, String(c.masterPid), `${c.ready}/${c.workers}`, formatDuration(c.uptimeMs)])],
    ['left', 'right', 'right', 'right'],
  );
}

export interface TopOptions {
  /** Terminal columns and rows; Infinity for plain output, which is never cut. */
  width: number;
  height: number;
  colour: boolean;
  /** The wall clock for the header, epoch ms. */
  now: number;
  /** The worker id the keys act on (live view only); undefined: none, and no key help. */
  selected?: number;
  /** Lines shown under the table (the selected worker's loop phases). */
  below?: readonly string[];
}

/** Samples shown per sparkline at most (the master keeps 60). */
export const SPARK_POINTS = 60;
const SPARK_MIN = 10;

/**
 * `top`: the status table plus, per worker, its recent lag p99 as a sparkline. All sparklines
 * share one scale whose top is at least LAG_WARN_MS, so a quiet worker stays flat and the one
 * in trouble stands out. Lines are cut to `width`; workers beyond `height` are counted, not shown.
 */
export function topLines(status: ClusterView, { width, height, colour, now, selected, below = [] }: TopOptions): string[] {
  const header = `${summaryLine(status, colour)}  ${style(new Date(now).toISOString().slice(11, 19), DIM, colour)}`;
  const rows = status.workers.map((worker) => {
    const cells = workerCells(worker, colour);
    // The selected worker (p shows its loop phases) is marked in its id cell.
    return worker.id === selected ? [style(`>${cells[0]}`, BOLD, colour), ...cells.slice(1)] : cells;
  });
  const cells = table([WORKER_HEADER, ...rows], WORKER_ALIGN);
  const tableWidth = Math.max(...cells.map(visibleWidth));
  const room = Number.isFinite(width) ? width - tableWidth - 2 : SPARK_POINTS;
  const points = Math.min(SPARK_POINTS, room);
  const scale = Math.max(LAG_WARN_MS, ...status.workers.flatMap((worker) => worker.history.map((point) => point.lagP99)));
  const lines = cells.map((line, i) => {
    if (points < SPARK_MIN) return line;
    const pad = ' '.repeat(tableWidth - visibleWidth(line) + 2);
    if (i === 0) return `${line}${pad}LAG p99, last ${points} samples (top = ${formatMs(scale)} ms)`;
    const history = status.workers[i - 1]!.history.slice(-points);
    const spark = history.map((point) => paint(sparkChar(point.lagP99, scale), lagLevel(point.lagP99), colour)).join('');
    return `${line}${pad}${spark}`;
  });
  const footer = style(selected === undefined ? 'q or Ctrl-C: quit' : 'q: quit   up/down (or k/j): select a worker   p: its loop phases (1 s)', DIM, colour);
  const sites = blockedSiteLines(status.workers);
  let body = [header, '', ...lines, ...(sites.length > 0 ? ['', ...sites] : []), ...(below.length > 0 ? ['', ...below] : [])];
  const budget = Number.isFinite(height) ? Math.max(3, height - 2) : Infinity;
  if (body.length > budget) {
    const hidden = body.length - (budget - 1);
    body = [...body.slice(0, budget - 1), style(`... ${hidden} more worker${hidden === 1 ? '' : 's'}`, DIM, colour)];
  }
  const all = Number.isFinite(height) ? [...body, '', footer] : body;
  return Number.isFinite(width) ? all.map((line) => truncate(line, width)) : all;
}
