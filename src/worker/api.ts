// The API an app may import from 'clusterd/worker'. None of it is needed to run under clusterd.

/** Under `--wait-ready`, tells the master this worker may receive traffic. */
export function ready(): void {
  process.send?.('ready');
}

/** This worker's id (1..N, reused by its replacement), or undefined outside clusterd. */
export function workerId(): number | undefined {
  const id = process.env.CLUSTERD_WORKER_ID;
  return id === undefined ? undefined : Number(id);
}
