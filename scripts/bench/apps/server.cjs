/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS on purpose: PM2's cluster mode require()s the app */
'use strict';
// The one app every benchmarked system runs: a plain http server, unaware of what balances it.
//   GET /          -> "hello\n"
//   GET /burn/<ms> -> burns <ms> of CPU time in a busy loop first (the mixed workload's slow requests)
// Each process counts the requests it served and the connections it got, and keeps
// BENCH_COUNT_DIR/<pid>.json up to date, so the benchmark reads every worker's share without asking
// the load generator or a balanced side route.
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const port = Number(process.env.BENCH_PORT ?? 3000);
const countDir = process.env.BENCH_COUNT_DIR;
let served = 0;
let connections = 0;

// Spins until this process has used `ms` of CPU time (not wall time: on a busy machine a wall-clock
// spin would cost less CPU whenever the scheduler preempts it). A CPU-bound handler the balancer
// cannot see coming.
function burn(ms) {
  const start = process.cpuUsage();
  for (;;) {
    const used = process.cpuUsage(start);
    if (used.user + used.system >= ms * 1000) return;
  }
}

const server = http.createServer((request, response) => {
  served++;
  if (request.url.startsWith('/burn/')) burn(Number(request.url.slice(6)) || 0);
  response.writeHead(200, { 'content-type': 'text/plain', 'content-length': '6' });
  response.end('hello\n');
});

server.on('connection', () => {
  connections++;
});

let written = -1;
function writeCount() {
  if (!countDir || served + connections === written) return;
  const file = path.join(countDir, `${process.pid}.json`);
  // Write then rename, so the benchmark never reads half a file.
  fs.writeFileSync(`${file}.tmp`, JSON.stringify({ pid: process.pid, served, connections }));
  fs.renameSync(`${file}.tmp`, file);
  written = served + connections;
}

server.listen(port, '127.0.0.1', () => {
  writeCount();
  // 100 ms is enough: the benchmark reads the files 300 ms after the load stops.
  setInterval(writeCount, 100).unref();
});
