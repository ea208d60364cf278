// The open-loop generator's child process (spawned by open-loop.ts), so that pacing and response
// handling get an event loop of their own instead of sharing the benchmark runner's. Protocol on
// stdio: it prints READY once loaded, waits for GO on stdin (the runner takes its CPU snapshots in
// between, so Node's and tsx's start-up stay out of the measured window), runs, and prints one line
// `BENCH_JSON <LoadResult>`. stdin closing early means the runner is gone: exit. It raises its own
// CPU priority first (priority.ts).
import { runOpenLoop } from './open-loop-engine.js';
import { GO, MARKER, parseConfig, READY } from './open-loop-protocol.js';
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
