/* eslint-disable @typescript-eslint/no-require-imports -- a standalone CommonJS measurement, run with plain node */
'use strict';
// How many connections a worker holds when it accepts one, on a shared listening socket (node:cluster
// with SCHED_NONE): the evidence for how `fair` limits workers (BENCHMARKS.md, "Issue 10"). libuv
// accepts in a loop until EAGAIN when the socket is readable, so a worker that wakes to a queue of
// connections takes all of them at once; with a new connection per request the counts show it.
//
//   node scripts/bench/accept-batches.cjs [workers=2] [port=3911] [seconds=5]
//   (then, from another shell, within the window:)
//   wrk -t1 -c64 -d5s -s <(echo 'wrk.headers["Connection"] = "close"') http://127.0.0.1:3911/
//
// Each worker prints, when the window ends, how many connections it accepted and, at each accept, how
// many connections its server held (that one included): percentiles and the share at 1-2 (one at a time).
const cluster = require('node:cluster');
const http = require('node:http');

const [workers = 2, port = 3911, seconds = 5] = process.argv.slice(2).map(Number);

if (cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const reports = [];
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('message', (_worker, report) => {
    reports.push(report);
    if (reports.length < workers) return;
    for (const line of reports) console.log(JSON.stringify(line));
    process.exit(0);
  });
  let listening = 0;
  cluster.on('listening', () => {
    if (++listening === workers) console.log(`listening on 127.0.0.1:${port}: start the load now; reporting in ${seconds + 5} s`);
  });
  setTimeout(() => {
    for (const worker of Object.values(cluster.workers)) worker.send('report');
  }, (seconds + 5) * 1000);
} else {
  const counts = [];
  const server = http.createServer((request, response) => response.end('hello\n'));
  server.on('connection', () => counts.push(server._connections));
  server.listen(port, '127.0.0.1');
  process.on('message', () => {
    counts.sort((a, b) => a - b);
    const at = (p) => counts[Math.min(counts.length - 1, Math.floor((p / 100) * counts.length))] ?? 0;
    const single = counts.filter((count) => count <= 2).length;
    process.send({
      pid: process.pid,
      accepted: counts.length,
      heldAtAccept: { p50: at(50), p90: at(90), p99: at(99), max: counts.at(-1) ?? 0 },
      oneAtATimePct: counts.length ? Math.round((100 * single) / counts.length) : 0,
    });
  });
}
