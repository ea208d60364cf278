// Runs control commands (status, reload, stack...) of the built CLI against a private runtime dir.
import { execa, type Result } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './cluster.js';

export interface WorkerJson {
  id: number;
  pid: number;
  state: string;
  generation: number;
  restarts: number;
  rss: number | null;
  /** Open connections in the worker's last sample. */
  connections: number | null;
  lag: { mean: number; p50: number; p90: number; p99: number; max: number } | null;
}

export interface Control {
  env: { CLUSTERD_RUNTIME_DIR: string };
  run(args: string[], options?: { timeoutMs?: number; cwd?: string }): Promise<Result>;
  workers(name: string): Promise<WorkerJson[]>;
}

/** A runtime directory of the test's own (removed on teardown) and the CLI bound to it. */
export function control(t: { teardown(fn: () => void): void }): Control {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-ctl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = { CLUSTERD_RUNTIME_DIR: dir };
  const run = (args: string[], { timeoutMs = 60_000, cwd }: { timeoutMs?: number; cwd?: string } = {}): Promise<Result> =>
    execa(process.execPath, [CLI, ...args], { env, reject: false, timeout: timeoutMs, ...(cwd ? { cwd } : {}) }) as unknown as Promise<Result>;
  return {
    env,
    run,
    async workers(name) {
      const result = await run(['status', name, '--json']);
      if (result.exitCode !== 0) throw new Error(`status ${name} failed: ${String(result.stderr)}`);
      return (JSON.parse(String(result.stdout)) as { workers: WorkerJson[] }).workers;
    },
  };
}
