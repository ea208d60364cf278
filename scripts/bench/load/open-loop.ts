// The open-loop (constant arrival rate) load generator, runner side. wrk and autocannon are closed
// loops: they keep N requests outstanding, so the latency they report is fixed by Little's law at
// N / req/s and cannot compare tail latency between systems. Here request i is due at start + i / rate
// whatever happened to the others, and its latency runs from that due time.
//
// Each run is a child process (open-loop-main.ts) with an event loop of its own. It is written here on
// raw `net` sockets, with no new dependency: wrk2 (wrk with a constant rate) is not packaged for
// Debian and would have to be built, vegeta would bring a Go toolchain, and autocannon's overallRate
// only throttles its closed loop (a request still waits for its connection's previous one) inside
// the runner's own process. The server is ours and always sends content-length, so a minimal
// parser suffices.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { spawnTracked, stopTracked } from '../processes.js';
import { GO, MARKER, READY, type ChildConfig } from './open-loop-protocol.js';
import type { LoadResult, OpenLoopGenerator, OpenLoopRun } from './types.js';

const CHILD = fileURLToPath(new URL('./open-loop-main.ts', import.meta.url));
/** Past the run and its drain, a child still running is stuck: kill it. */
const GRACE_MS = 30_000;

/** How results name this generator. */
export const OPEN_LOOP_VERSION = `scripts/bench open loop, Node ${process.version}`;

/** The generator; each run() spawns one child with this Node and tsx. */
export function createOpenLoop(): OpenLoopGenerator {
  const tsx = import.meta.resolve('tsx');
  return {
    name: 'open-loop',
    version: OPEN_LOOP_VERSION,
    async run(run: OpenLoopRun): Promise<LoadResult> {
      const config: ChildConfig = {
        host: '127.0.0.1',
        port: run.port,
        rate: run.rate,
        durationS: run.durationS,
        warmupS: run.warmupS,
        timeoutS: run.timeoutS,
        paths: run.workload.paths,
        keepAlive: run.workload.keepAlive,
        pool: run.pool,
        maxInFlight: run.maxInFlight,
      };
      const child = spawnTracked(process.execPath, ['--import', tsx, CHILD, JSON.stringify(config)], { stdin: 'pipe' });
      let output = '';
      let started = false;
      child.child.stdout?.setEncoding('utf8');
      let failed: Error | undefined;
      child.child.stdout?.on('data', (chunk: string) => {
        output += chunk;
        if (started || !output.split('\n').includes(READY)) return;
        started = true;
        Promise.resolve(run.onStart?.()).then(
          () => child.child.stdin?.write(`${GO}\n`),
          (error: Error) => {
            failed = error;
            void stopTracked(child, 1_000);
          },
        );
      });
      const limit = setTimeout(() => void stopTracked(child, 1_000), (run.warmupS + run.durationS + run.timeoutS) * 1000 + GRACE_MS);
      try {
        await child.exited;
      } finally {
        clearTimeout(limit);
      }
      if (failed) throw failed;
      const line = output.split('\n').find((text) => text.startsWith(MARKER));
      if (!line) throw new Error(`open-loop generator printed no result (exit ${child.child.exitCode ?? child.child.signalCode}): ${child.tail().slice(-500)}`);
      return JSON.parse(line.slice(MARKER.length)) as LoadResult;
    },
  };
}

/** True when the child's source is where this file expects it (a broken checkout fails early). */
export function openLoopAvailable(): boolean {
  return fs.existsSync(CHILD);
}
