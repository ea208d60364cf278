// What `ls`, `status` and `top` print, as pure functions of what the control plane returned.
import type { LagSummary } from '../loop/types.js';
import type { BlockedView, ClusterView, WorkerView } from '../control/types.js';
import { blockedLines, blockedNowLines, blockedSiteLines, waitingLines } from './stack-view.js';
import { shownState } from '../control/worker-rows.js';
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
  printable,
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
  /** How long its loop has been blocked now (silent a second, or past --watchdog), in ms; 0 while it turns. */
  blockedMs: number;
  /** Replacements for --max-memory: planned, not in `restarts`. */
  memoryReplacements: number;
}

/** `status --json`: the cluster's fields, each worker flattened to the issue's documented shape. */
// The runtime prefixes are for this client's notes, and the stop terms for `clusterd stop`: not part of the documented shape.
export type StatusJson = Omit<ClusterView, 'workers' | 'runtimePrefixes' | 'stopTerms'> & { workers: WorkerJson[] };

export function statusJson(status: ClusterView): StatusJson {
  return {
    name: status.name,
    workers: status.workers.map(workerJson),
    masterPid: status.masterPid,
    startedAt: status.startedAt,
    uptimeMs: status.uptimeMs,
    entry: status.entry,
    balance: status.balance,
    addresses: [...status.addresses],
    statsIntervalMs: status.statsIntervalMs,
    totals: { ...status.totals },
    waiting: status.waiting.map((waiting) => ({ ...waiting })),
    master: status.master ? { ...status.master } : null,
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
    blockedMs: worker.blockedMs,
    memoryReplacements: worker.memoryReplacements,
  };
}

/** One column of the worker table; `drop`: the order in which a narrow terminal loses it (none: kept). */
interface WorkerColumn {
  header: string;
  align: Align;
  drop?: number;
  cell(worker: WorkerView, colour: boolean): string;
}

const NONE = '-';
/** A cell of the worker's sample: `-` until its first one. */
const sampled =
  (read: (sample: NonNullable<WorkerView['sample']>, colour: boolean) => string) =>
  (worker: WorkerView, colour: boolean): string =>
    worker.sample ? read(worker.sample, colour) : NONE;

// Dropped first: what the summary line or `status --json` also says, or what matters least while
// something is wrong (generation, connections, uptime, restarts, pid), then CPU and the lag p50.
const WORKER_COLUMNS: readonly WorkerColumn[] = [
  { header: 'ID', align: 'right', cell: (worker) => String(worker.id) },
  { header: 'PID', align: 'right', drop: 5, cell: (worker) => String(worker.pid) },
  // A ready worker whose loop is blocked now says so: its last sample is from before the block.
  { header: 'STATE', align: 'left', cell: shownState },
  { header: 'GEN', align: 'right', drop: 1, cell: (worker) => String(worker.generation) },
  { header: 'UPTIME', align: 'right', drop: 3, cell: (worker) => formatDuration(worker.uptimeMs) },
  { header: 'RESTARTS', align: 'right', drop: 4, cell: (worker) => String(worker.restarts) },
  { header: 'REQ/S', align: 'right', cell: sampled((sample) => formatRate(sample.http.rps)) },
  { header: 'CONNS', align: 'right', drop: 2, cell: sampled((sample) => String(sample.http.connections)) },
  { header: 'LAG p50', align: 'right', drop: 7, cell: sampled(({ lag }, colour) => paint(formatMs(lag.p50), lagLevel(lag.p50), colour)) },
  { header: 'p99', align: 'right', cell: sampled(({ lag }, colour) => paint(formatMs(lag.p99), lagLevel(lag.p99), colour)) },
  { header: 'max', align: 'right', cell: sampled(({ lag }, colour) => paint(formatMs(lag.max), lagLevel(lag.max), colour)) },
  { header: 'ELU', align: 'right', cell: sampled((sample, colour) => paint(formatFraction(sample.elu), eluLevel(sample.elu), colour)) },
  { header: 'CPU', align: 'right', drop: 6, cell: sampled((sample) => formatPercent(sample.cpu)) },
  { header: 'RSS', align: 'right', cell: sampled((sample) => formatBytes(sample.memory.rss)) },
];

const DROP_ORDER = WORKER_COLUMNS.filter((column) => column.drop !== undefined).sort((a, b) => a.drop! - b.drop!);

/**
 * The worker table within `width` columns: the columns of DROP_ORDER go, in that order, until it
 * fits (what still does not fit is cut by the caller). The lag p50 header takes the "LAG" label
 * on to p99 when it goes. `mark` styles a worker's id cell (top's selection).
 */
function workerTable(workers: readonly WorkerView[], { width, colour, mark }: { width: number; colour: boolean; mark?: (worker: WorkerView, id: string) => string }): string[] {
  const build = (columns: readonly WorkerColumn[]): string[] => {
    const lagLabel = !columns.some((column) => column.header === 'LAG p50');
    const header = columns.map((column) => (lagLabel && column.header === 'p99' ? 'LAG p99' : column.header));
    const rows = workers.map((worker) => columns.map((column, i) => (i === 0 && mark ? mark(worker, column.cell(worker, colour)) : column.cell(worker, colour))));
    return table([header, ...rows], columns.map((column) => column.align));
  };
  let columns = WORKER_COLUMNS;
  let lines = build(columns);
  for (const dropped of DROP_ORDER) {
    if (Math.max(...lines.map(visibleWidth)) <= width) break;
    columns = columns.filter((column) => column !== dropped);
    lines = build(columns);
  }
  return lines;
}

/**
 * `status`: a header line about the cluster, one row per worker, then any blocked-loop notes, all
 * within `width` columns (Infinity: every column, nothing wrapped).
 */
export function statusLines(status: ClusterView, width = Infinity): string[] {
  const blocked = [...waitingLines(status), ...blockedNowLines(status), ...blockedLines(status), ...blockedSiteLines(status)];
  return [
    ...wrapParts(summaryParts(status, false), width),
    '',
    ...workerTable(status.workers, { width, colour: false }),
    ...(blocked.length > 0 ? ['', ...blocked.flatMap((line) => wrapWords(line, width))] : []),
  ];
}

/** Joins `parts` two spaces apart, starting a new line where the next would pass `width`. */
function wrapParts(parts: readonly string[], width: number): string[] {
  const lines: string[] = [];
  for (const part of parts) {
    const last = lines.at(-1);
    if (last !== undefined && visibleWidth(last) + 2 + visibleWidth(part) <= width) lines[lines.length - 1] = `${last}  ${part}`;
    else lines.push(part);
  }
  return lines;
}

/** A sentence wrapped at spaces to `width`, continuation lines indented by two (a word longer than a line stays whole). */
function wrapWords(text: string, width: number): string[] {
  if (visibleWidth(text) <= width) return [text];
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    const next = line === '' ? word : `${line} ${word}`;
    if (line !== '' && visibleWidth(next) > width) {
      lines.push(line);
      line = `  ${word}`;
    } else line = next;
  }
  lines.push(line);
  return lines;
}

function summaryParts(status: ClusterView, colour: boolean): string[] {
  const { totals } = status;
  // With no sample from any worker yet (stats off, or all just started) the sums are no zeros: `-`.
  const sampled = status.workers.some((worker) => worker.sample !== null);
  return [
    style(status.name, BOLD, colour),
    `master ${status.masterPid}`,
    `up ${formatDuration(status.uptimeMs)}`,
    readyPart(totals),
    `${sampled ? formatRate(totals.rps) : '-'} req/s`,
    `${sampled ? totals.connections : '-'} conns`,
    rssPart(status, sampled),
    ...(totals.restarts > 0 ? [`${totals.restarts} restart${totals.restarts === 1 ? '' : 's'}`] : []),
    ...(totals.memoryReplacements > 0 ? [`${totals.memoryReplacements} memory replacement${totals.memoryReplacements === 1 ? '' : 's'}`] : []),
    // A unix socket's path is the app's to choose: its control characters shown as escapes, never sent to the terminal.
    ...(status.addresses.length > 0 ? [`on ${status.addresses.map(printable).join(', ')}`] : []),
  ];
}

/**
 * `RSS 154 MiB`, the workers' sum, then `+ master 41.0 MiB` (`master RSS 41.0 MiB` before any sample): the master's own, said apart so that the sum keeps
 * its meaning (a master older than the field sends none, and nothing is added).
 */
function rssPart({ totals, master }: ClusterView, sampled: boolean): string {
  const workers = `RSS ${sampled ? formatBytes(totals.rss) : '-'}`;
  if (!master) return workers;
  // Before any worker's first sample (or with --stats-interval 0) there is no sum to add to.
  return sampled ? `${workers} + master ${formatBytes(master.rss)}` : `master RSS ${formatBytes(master.rss)}`;
}

/** `2/3 ready`, and `, 1 blocked` while ready workers' loops are blocked (they are not in the ready count). */
function readyPart({ ready, desired, blocked }: ClusterView['totals']): string {
  return `${ready}/${desired} ready${blocked > 0 ? `, ${blocked} blocked` : ''}`;
}

/** `ls --json`: one object per cluster. */
export interface ClusterListJson {
  name: string;
  masterPid: number;
  workers: number;
  /** Ready and their loop not blocked now. */
  ready: number;
  /** Ready, their loop blocked now: not in `ready`. */
  blocked: number;
  /** The worker count asked for: above `workers` while an id waits to be restarted. */
  desired: number;
  uptimeMs: number;
  /** Where the app listens, as in `status --json`. */
  addresses: string[];
}

export function lsJson(clusters: readonly ClusterView[]): ClusterListJson[] {
  return clusters.map((status) => ({
    name: status.name,
    masterPid: status.masterPid,
    workers: status.totals.workers,
    ready: status.totals.ready,
    blocked: status.totals.blocked,
    desired: status.totals.desired,
    uptimeMs: status.uptimeMs,
    addresses: [...status.addresses],
  }));
}

/** `ls`: NAME, PID, WORKERS (ready/asked for, as status's summary, and any blocked), UPTIME, LISTENING (where the app listens). */
export function lsLines(clusters: readonly ClusterView[]): string[] {
  return table(
    [
      ['NAME', 'PID', 'WORKERS', 'UPTIME', 'LISTENING'],
      ...lsJson(clusters).map((c) => [c.name, String(c.masterPid), `${c.ready}/${c.desired}${c.blocked > 0 ? ` (${c.blocked} blocked)` : ''}`, formatDuration(c.uptimeMs), c.addresses.map(printable).join(', ')]),
    ],
    ['left', 'right', 'right', 'right', 'left'],
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
  const header = wrapParts([...summaryParts(status, colour), style(new Date(now).toISOString().slice(11, 19), DIM, colour)], width);
  // The selected worker (p shows its loop phases) is marked in its id cell.
  const mark = (worker: WorkerView, id: string): string => (worker.id === selected ? style(`>${id}`, BOLD, colour) : id);
  // Room for a sparkline of SPARK_MIN points first, then the widest table that fits.
  const cells = workerTable(status.workers, { width: Number.isFinite(width) ? width - 2 - SPARK_MIN : width, colour, mark });
  const tableWidth = Math.max(...cells.map(visibleWidth));
  const room = Number.isFinite(width) ? width - tableWidth - 2 : SPARK_POINTS;
  const points = Math.min(SPARK_POINTS, room);
  const scale = Math.max(LAG_WARN_MS, ...status.workers.flatMap((worker) => worker.history.map((point) => point.lagP99)));
  const lines = cells.map((line, i) => {
    if (points < SPARK_MIN) return line;
    const pad = ' '.repeat(tableWidth - visibleWidth(line) + 2);
    if (i === 0) {
      // The sparklines' label, shortened to the room there is.
      const label = [`LAG p99, last ${points} samples (top = ${formatMs(scale)} ms)`, `p99, top ${formatMs(scale)} ms`].find((text) => text.length <= room) ?? 'p99';
      return `${line}${pad}${label}`;
    }
    const history = status.workers[i - 1]!.history.slice(-points);
    const spark = history.map((point) => paint(sparkChar(point.lagP99, scale), lagLevel(point.lagP99), colour)).join('');
    return spark === '' ? line : `${line}${pad}${spark}`;
  });
  const footer = style(selected === undefined ? 'q or Ctrl-C: quit' : 'q: quit   up/down (or k/j): select a worker   p: its loop phases (1 s)', DIM, colour);
  // Wrapped as under `status`: cut at the width, a note lost what it was waiting for and the command that helps.
  const notes = [...waitingLines(status), ...blockedNowLines(status), ...blockedSiteLines(status)].flatMap((line) => wrapWords(line, width));
  let body = [...header, '', ...lines, ...(notes.length > 0 ? ['', ...notes] : []), ...(below.length > 0 ? ['', ...below] : [])];
  const budget = Number.isFinite(height) ? Math.max(3, height - 2) : Infinity;
  if (body.length > budget) {
    const hidden = body.length - (budget - 1);
    body = [...body.slice(0, budget - 1), style(`... ${hidden} more worker${hidden === 1 ? '' : 's'}`, DIM, colour)];
  }
  const all = Number.isFinite(height) ? [...body, '', footer] : body;
  return Number.isFinite(width) ? all.map((line) => truncate(line, width)) : all;
}
