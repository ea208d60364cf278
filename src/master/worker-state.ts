// A worker's lifecycle, as one type and one transition function that refuses illegal edges.
//
//   starting --ready--> ready --stop--> stopping --exit--> exited
//       |               ^   |                                ^
//       |      listens  |   | every server closed            |
//       |      again    |   v (by the app)                   |
//       |           not-listening --stop--> stopping         |
//       |                   |                                |
//       +------stop---------+------------exit----------------+
//
// `not-listening`: the app closed every server it listened on, by its own hand (not in a drain of
// clusterd's), and runs on: not ready, given no connections, and ready again once it listens again.
export type WorkerState = 'starting' | 'ready' | 'not-listening' | 'stopping' | 'exited';

const EDGES: Record<WorkerState, readonly WorkerState[]> = {
  starting: ['ready', 'stopping', 'exited'],
  ready: ['not-listening', 'stopping', 'exited'],
  'not-listening': ['ready', 'stopping', 'exited'],
  stopping: ['exited'],
  exited: [],
};

export class IllegalTransitionError extends Error {
  constructor(from: WorkerState, to: WorkerState) {
    super(`Illegal worker state transition ${from} -> ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

/** Returns the next state, or throws when the edge is not in the diagram above. */
export function transition(from: WorkerState, to: WorkerState): WorkerState {
  if (!EDGES[from].includes(to)) throw new IllegalTransitionError(from, to);
  return to;
}

/**
 * True while the worker should receive new connections: once it listens (it is `starting` until
 * every server listens), or under --wait-ready only once the app said it is ready.
 */
export function isAccepting(state: WorkerState, waitReady = false): boolean {
  return state === 'ready' || (state === 'starting' && !waitReady);
}

/**
 * Past its boot and not stopping: ready, or not listening for now. Such a worker may be replaced
 * (a reload, --max-memory) and watched (the watchdog); only a ready one counts as ready.
 */
export function isUp(state: WorkerState): boolean {
  return state === 'ready' || state === 'not-listening';
}
