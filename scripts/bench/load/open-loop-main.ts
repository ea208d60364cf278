// The open-loop generator's child process (spawned by open-loop.ts), so that pacing and response
// handling get an event loop of their own instead of sharing the benchmark runner's. It raises its
// own CPU priority (priority.ts), runs the warm-up (at least MIN_WARMUP_S, for its JIT), prints READY,
// waits for GO on stdin (the runner takes its count and CPU snapshots in between, so start-up and
// warm-up stay out of the measured window), runs the measured schedule and prints one line
// `BENCH_JSON <LoadResult>`. stdin closing early means the runner is gone: exit.
import { runOpenLoop } from './open-loop-engine.js';
import { GO, MARKER, MIN_WARMUP_S, parseConfig, READY } from './open-loop-protocol.js';
import { raisePriority } from './priority.js';

async function main(): Promise<void> {
  const config = parseConfig(process.argv[2]);
  const priority = raisePriority();
  const orphaned = () => process.exit(1);
  process.stdin.once('end', orphaned);
  process.stdin.setEncoding('utf8');
  const go = new Promise<void>((resolve) => {
    let input = '';
    const onData = (chunk: string) => {
      input += chunk;
      if (!input.split('\n').includes(GO)) return;
      process.stdin.off('data', onData);
      resolve();
    };
    process.stdin.on('data', onData);
  });
  // A fresh pool (keep-alive) for the measured run: its connections are placed while it is measured.
  await runOpenLoop({ ...config, durationS: Math.max(config.warmupS, MIN_WARMUP_S) });
  process.stdout.write(`${READY}\n`);
  await go;
  const result = await runOpenLoop(config);
  if (result.open) result.open.priority = priority;
  process.stdout.write(`${MARKER}${JSON.stringify(result)}\n`);
  process.stdin.off('end', orphaned);
  process.stdin.destroy();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
