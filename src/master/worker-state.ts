// A worker's lifecycle, as one type and one transition function that refuses illegal edges.
//
//   starting --ready--> ready --stop--> stopping --exit--> exited
//       |                 |                                  ^
//       +------stop-------+---------------exit---------------+
export type WorkerState = 'starting' | 'ready' | 'stopping' | 'exited';

const EDGES: Record<WorkerState, readonly WorkerState[]> = {
  starting: ['ready', 'stopping', 'exited'],
  ready: ['stopping', 'exited'],
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
