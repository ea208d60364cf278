// start()'s master belongs to its caller (src/index.ts): the cluster's output reaches the caller's
// own stdout and stderr, and a caller that dies, even by SIGKILL, takes its cluster with it.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fixture, isRunning, waitFor } from './helpers/cluster.js';

const INDEX = pathToFileURL(fileURLToPath(new URL('../dist/index.js', import.meta.url))).href;

test("a start() caller killed by SIGKILL takes its cluster with it; the cluster's output was the caller's", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-caller-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'caller.mjs');
  writeFileSync(
    script,
    `import { start } from ${JSON.stringify(INDEX)};
const cluster = await start({ entry: ${JSON.stringify(fixture('logs-at-start.js'))}, instances: 1, name: 'caller-owned' });
const status = await cluster.status();
console.log(\`pids \${cluster.masterPid} \${status.workers.map((worker) => worker.pid).join(' ')}\`);
`,
  );
  const caller = execa(process.execPath, [script], { env: { CLUSTERD_RUNTIME_DIR: dir }, reject: false, stdin: 'ignore' });
  t.teardown(() => caller.kill('SIGKILL'));
  const lines: string[] = [];
  const pids = await new Promise<number[]>((resolve, reject) => {
    const reader = createInterface({ input: caller.stdout! });
    reader.on('line', (line) => {
      lines.push(line);
      if (line.startsWith('pids ')) resolve(line.split(' ').slice(1).map(Number));
    });
    void caller.then((result) => reject(new Error(`the caller exited first: ${String(result.stderr)}`)));
  });
  // The worker's own line came through the caller's stdout (no log file took it).
  await waitFor(() => lines.includes('[w1] worker 1 up'), { what: "the worker's line on the caller's stdout" });
  t.true(pids.length === 2 && pids.every(isRunning), `pids ${pids.join(' ')}`);
  caller.kill('SIGKILL');
  await waitFor(() => pids.every((pid) => !isRunning(pid)), { what: 'the master and its worker gone with their caller', timeoutMs: 20_000 });
  t.pass();
});

test("start()'s config file (every option, the env's secrets too) is gone once its master read it, even if the caller is killed before the cluster is ready", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-caller-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const temp = join(dir, 'tmp');
  mkdirSync(temp);
  const script = join(dir, 'caller.mjs');
  writeFileSync(
    script,
    `import { start } from ${JSON.stringify(INDEX)};
await start({ entry: ${JSON.stringify(fixture('never-listens.js'))}, instances: 1, name: 'caller-secrets', env: { DB_PASSWORD: 'hunter2' } });
`,
  );
  const caller = execa(process.execPath, [script], { env: { CLUSTERD_RUNTIME_DIR: dir, TMPDIR: temp }, reject: false, stdin: 'ignore' });
  t.teardown(() => caller.kill('SIGKILL'));
  const written = () => readdirSync(temp).filter((name) => name.startsWith('clusterd-api-'));
  // The master has read it once its control socket is there; the cluster is not ready (its app never listens).
  await waitFor(() => existsSync(join(dir, 'caller-secrets.sock')), { what: "the master's control socket" });
  caller.kill('SIGKILL');
  await waitFor(() => written().length === 0, { what: 'the config file removed', timeoutMs: 20_000 });
  t.pass();
});
