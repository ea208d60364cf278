// Every control test runs in its own runtime directory, never the user's real one.
import type { ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Anything that falls back to runtimeDir() lands in a throwaway directory too.
if (!process.env.CLUSTERD_RUNTIME_DIR) {
  const dir = mkdtempSync(join(tmpdir(), 'cd-env-'));
  process.env.CLUSTERD_RUNTIME_DIR = dir;
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
}

/** A fresh directory, removed when the test ends. Short: unix socket paths are limited to ~104 bytes. */
export function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'cd-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
