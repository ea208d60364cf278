/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS, like server.cjs */
'use strict';
// node:cluster wrapped around the same app. NODE_CLUSTER_SCHED_POLICY (rr or none) picks Node's
// round-robin or the shared handle; the benchmark sets it. BENCH_WORKERS workers; SIGTERM stops all.
const cluster = require('node:cluster');

if (cluster.isPrimary) {
  const count = Number(process.env.BENCH_WORKERS ?? 2);
  // Extra node flags for the workers (`npm run bench:profile` passes --cpu-prof). A profile is only
  // written by a process that exits on its own, so those workers are disconnected, not killed.
  const workerArgs = process.env.BENCH_WORKER_NODE_ARGS ? JSON.parse(process.env.BENCH_WORKER_NODE_ARGS) : null;
  if (workerArgs) cluster.setupPrimary({ execArgv: [...process.execArgv, ...workerArgs] });
  let stopping = false;
  for (let i = 0; i < count; i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) console.error(`worker ${worker.process.pid} died (${signal ?? code})`);
  });
  process.on('SIGTERM', () => {
    stopping = true;
    if (!workerArgs) for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    cluster.disconnect(() => process.exit(0));
  });
} else {
  require('./server.cjs');
}
