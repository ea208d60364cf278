/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS on purpose: PM2's cluster mode require()s the app */
'use strict';
// The one app every benchmarked system runs: a plain http server, unaware of what balances it.
//   GET /          -> "hello\n"
//   GET /burn/<ms> -> burns <ms> of CPU time in a busy loop first (the mixed workload's slow requests)
// Each process counts the requests it served and the connections it got, and keeps
// BENCH_COUNT_DIR/<pid>.json up to date, so the benchmark reads every worker's share without asking
// the load generator or a balanced side route.
// With BENCH_BLOCK_MS set (workload e), exactly one serving process blocks its event loop that long
// every BENCH_BLOCK_EVERY_MS (default 1000): a stalled worker the balancer should route around.
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

const blockMs = Number(process.env.BENCH_BLOCK_MS ?? 0);
const blockEveryMs = Number(process.env.BENCH_BLOCK_EVERY_MS ?? 1000);

// The first serving process to create the lock file is the one that blocks. Worker ids cannot say
// which: node:cluster, PM2 and clusterd number their workers differently, and a single process has
// none. An exclusive create ('wx') in the run's fresh count folder elects exactly one, whatever starts
// the processes; the file holds the winner's pid, for the benchmark's report.
function electedToBlock() {
  if (!(blockMs > 0) || !countDir) return false;
  try {
    const fd = fs.openSync(path.join(countDir, 'blocker.lock'), 'wx');
    fs.writeSync(fd, String(process.pid));
    fs.closeSync(fd);
    return true;
  } catch {
    return false;
  }
}

// A wall-clock spin, as a synchronous call (a big JSON.parse, a sync read) holds the loop.
function block() {
  const until = performance.now() + blockMs;
  while (performance.now() < until);
}

server.listen(port, '127.0.0.1', () => {
  writeCount();
  // 100 ms is enough: the benchmark reads the files 300 ms after the load stops.
  setInterval(writeCount, 100).unref();
  if (electedToBlock()) setInterval(block, blockEveryMs).unref();
});
