// How `clusterd loop` should see every callback: CPU per request of a keep-alive hello-world server
// under `wrk -t1 -c32 -d5s` (127.0.0.1:3799), in one of three modes: none, async_hooks timing (as
// src/loop/phases.ts: init/before/after/destroy with performance.now()), or trace events (the
// node.async_hooks category through the in-process inspector's NodeTracing domain). BENCHMARKS.md, issue 12.
//
//   for m in none hooks trace none hooks trace; do node scripts/bench/hooks-vs-trace.mjs $m; done
import http from 'node:http';
import { createHook } from 'node:async_hooks';
import { Session } from 'node:inspector/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
const mode = process.argv[2];
if (!['none', 'hooks', 'trace'].includes(mode)) {
  console.error('usage: node scripts/bench/hooks-vs-trace.mjs none|hooks|trace');
  process.exit(2);
}
let served = 0;
const server = http.createServer((req, res) => { served++; res.end('hello\n'); });
await new Promise((r) => server.listen(3799, '127.0.0.1', r));
let events = 0;
if (mode === 'hooks') {
  const res = new Map(); const running = [];
  let acc = 0;
  createHook({
    init(id, type) { const t = performance.now(); res.set(id, type); acc += performance.now() - t; },
    before() { running.push(performance.now()); },
    after() { const s = running.pop(); if (s !== undefined) acc += performance.now() - s; },
    destroy(id) { res.delete(id); },
  }).enable();
  process.on('exit', () => console.log(`hooks: ${acc.toFixed(0)} ms timed inside callbacks`));
} else if (mode === 'trace') {
  const session = new Session(); session.connect();
  session.on('NodeTracing.dataCollected', (m) => { events += m.params.value.length; });
  await session.post('NodeTracing.start', { traceConfig: { includedCategories: ['node.async_hooks'], recordMode: 'recordContinuously' } });
  setInterval(() => {}, 1000).unref();
  globalThis.__stop = () => session.post('NodeTracing.stop');
}
const cpu0 = process.cpuUsage(); const s0 = served;
await promisify(execFile)('wrk', ['-t1', '-c32', '-d5s', 'http://127.0.0.1:3799/']);
const cpu = process.cpuUsage(cpu0); const n = served - s0;
if (globalThis.__stop) await globalThis.__stop();
console.log(`${mode}: ${n} req, ${((cpu.user + cpu.system) / n).toFixed(1)} us CPU/req${mode === 'trace' ? `, ${events} trace events` : ''}`);
process.exit(0);
