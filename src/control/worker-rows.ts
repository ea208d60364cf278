// How every reader of the status (status, top, scale, /metrics, the totals) names a worker's state
// and picks, among an id's processes, the one that speaks for it: one rule, so that they agree.
// Plain functions over the rows' fields, for the master's WorkerStatus and a client's WorkerView alike.

/** A ready worker whose loop is blocked now (blockedMs: silent past a second, or --watchdog). */
export function isBlocked({ state, blockedMs }: { state: string; blockedMs: number }): boolean {
  return state === 'ready' && blockedMs > 0;
}

/** Workers ready and not blocked, and ready ones blocked now: the counts of /readyz, /metrics and the status totals. */
export function countReady(workers: ReadonlyArray<{ state: string; blockedMs: number }>): { ready: number; blocked: number } {
  const blocked = workers.filter(isBlocked).length;
  return { ready: workers.filter((worker) => worker.state === 'ready').length - blocked, blocked };
}

/** The state as STATE, clusterd_worker_state and scale show it: `blocked` for a ready worker whose loop is blocked now. */
export function shownState<S extends string>(worker: { state: S; blockedMs: number }): S | 'blocked' {
  return isBlocked(worker) ? 'blocked' : worker.state;
}

/** Which of two processes under one worker id speaks for it: the one serving, then the one leaving (it still drains). */
const PRECEDENCE: Readonly<Record<string, number>> = { ready: 4, 'not-listening': 3, stopping: 2, starting: 1, exited: 0 };

interface Row {
  id: number;
  state: string;
  generation: number;
  startedAt: number;
}

/**
 * One row per worker id, in id order. While an id has two processes (a restart, a reload, a
 * memory-limit replacement), the one serving its connections speaks for it: the old worker until its
 * successor is ready, then the successor. Between two in the same state, the newer.
 */
export function onePerId<T extends Row>(workers: readonly T[]): T[] {
  const byId = new Map<number, T>();
  for (const worker of workers) {
    const seen = byId.get(worker.id);
    if (seen === undefined || speaksBefore(worker, seen)) byId.set(worker.id, worker);
  }
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

function speaksBefore(a: Row, b: Row): boolean {
  if (a.state !== b.state) return (PRECEDENCE[a.state] ?? 0) > (PRECEDENCE[b.state] ?? 0);
  return a.generation !== b.generation ? a.generation > b.generation : a.startedAt >= b.startedAt;
}

/**
 * The totals as the wire carries them (ClusterTotals, the dashboard feed): `ready` counts every ready
 * worker, blocked ones included, as masters counted before `blocked` existed, so that an older
 * client reading this master keeps the meaning it knows (and its rows, which say `ready`, add up);
 * `blocked` says how many of them are blocked now. readyAndBlocked takes them out again.
 */
export function wireTotals<T extends { ready: number; blocked: number }>(totals: T): T {
  return { ...totals, ready: totals.ready + totals.blocked };
}

/**
 * The totals' ready (and not blocked) and blocked workers, as a client reads them from the wire
 * (wireTotals). A master older than `blocked` sends 0; its rows say which are blocked (blockedMs).
 * Masters built between stop 36 and wireTotals sent `ready` without the blocked ones already: told
 * by the rows of the same message (their ready rows less `blocked`), not taken out twice.
 * For `status` and the dashboard's mirror alike.
 */
export function readyAndBlocked(totals: { ready: number; blocked: number }, workers: ReadonlyArray<{ state: string; blockedMs: number }>): { ready: number; blocked: number } {
  const blocked = totals.blocked > 0 ? totals.blocked : workers.filter(isBlocked).length;
  const readyRows = workers.filter((worker) => worker.state === 'ready').length;
  const takenOutAlready = totals.blocked > 0 && totals.ready === readyRows - totals.blocked;
  return { ready: takenOutAlready ? totals.ready : Math.max(0, totals.ready - blocked), blocked };
}
