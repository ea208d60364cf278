// `npm run bench:capture`: what one stack capture (`clusterd stack`, --report-blocked, the watchdog)
// costs the master and the worker in CPU time. A one-worker cluster of the benchmark's app, idle;
// --count stack calls, then as many status calls (the control plane's own share of a call, to
// subtract), each over the same connection; the master's and the worker's user + system time from
// /proc/PID/stat (10 ms ticks) over each. CPU time, not wall time, so the figure holds on a busy
// machine. Linux only.
//   --count N    calls of each kind (default 200)
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { start } from '../../src/index.js';

const root = path.resolve(import.meta.dirname, '..', '..');
const app = path.join(root, 'scripts', 'bench', 'apps', 'server.cjs');
const TICKS_PER_SECOND = 100;

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND) * 1000;
}

async function main(argv: string[]): Promise<number> {
  let count = 200;
  if (argv.length > 0) {
    if (argv.length !== 2 || argv[0] !== '--count' || !/^\d+$/.test(argv[1]!) || Number(argv[1]) < 10 || Number(argv[1]) > 10_000) {
      console.error('bench:capture: usage: npm run bench:capture -- [--count N] (10 to 10000)');
      return 2;
    }
    count = Number(argv[1]);
  }
  const cluster = await start({ entry: app, instances: 1, name: `capture-${process.pid}`, output: 'ignore', env: { BENCH_PORT: '0' } });
  try {
    const status = await cluster.status();
    const master = status.masterPid;
    const worker = status.workers[0]!.pid;
    await cluster.stack(1); // the inspector's start (SIGUSR1) stays out of the figures
    const measure = async (call: () => Promise<unknown>): Promise<{ master: number; worker: number }> => {
      const before = { master: cpuMs(master), worker: cpuMs(worker) };
      for (let i = 0; i < count; i++) await call();
      return { master: (cpuMs(master) - before.master) / count, worker: (cpuMs(worker) - before.worker) / count };
    };
    const stack = await measure(() => cluster.stack(1));
    const plain = await measure(() => cluster.status());
    console.log(
      [
        `${count} calls of each, Node ${process.version}: CPU ms per call`,
        '| call | master | worker |',
        '|---|---:|---:|',
        `| stack | ${stack.master.toFixed(2)} | ${stack.worker.toFixed(2)} |`,
        `| status | ${plain.master.toFixed(2)} | ${plain.worker.toFixed(2)} |`,
        `| the capture itself (stack - status) | ${(stack.master - plain.master).toFixed(2)} | ${(stack.worker - plain.worker).toFixed(2)} |`,
      ].join('\n'),
    );
  } finally {
    await cluster.stop();
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
