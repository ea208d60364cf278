// Puts what the benchmark compares against into .bench-cache/, once, so that a later run (or a machine
// without network that gets a copy of the folder) needs nothing else:
//   .bench-cache/node_modules/pm2   PM2 from the npm registry
//   .bench-cache/wrk/wrk            a copy of Debian's wrk with its libluajit, run with LD_LIBRARY_PATH
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { LoadGeneratorChoice } from './options.js';
import { createAutocannon } from './load/autocannon.js';
import type { LoadGenerator } from './load/types.js';
import { createWrk, type WrkCommand } from './load/wrk.js';

export interface Pm2Install {
  /** The pm2 CLI script, run with this Node. */
  bin: string;
  version: string;
}

/** Finds PM2 in the cache, installing it from the npm registry first when allowed. */
export function preparePm2({ cache, install }: { cache: string; install: boolean }): Pm2Install | { note: string } {
  const root = path.join(cache, 'node_modules', 'pm2');
  if (!fs.existsSync(path.join(root, 'package.json'))) {
    if (!install) return { note: 'PM2 is not in .bench-cache/ and --no-install was given' };
    console.error('bench: installing pm2@latest into .bench-cache/ ...');
    try {
      execFileSync('npm', ['install', '--prefix', cache, 'pm2@latest', '--no-audit', '--no-fund', '--loglevel=error'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    } catch (error) {
      return { note: `npm install pm2 failed: ${firstLine(error)}` };
    }
  }
  const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  return { bin: path.join(root, 'bin', 'pm2'), version };
}

/** Picks the load generator: wrk when it is (or can be made) available, else autocannon. */
export function prepareLoadGenerator({
  choice,
  cache,
  install,
}: {
  choice: LoadGeneratorChoice;
  cache: string;
  install: boolean;
}): { generator: LoadGenerator; note?: string } {
  const scripts = path.join(cache, 'tmp');
  if (choice === 'autocannon') return { generator: createAutocannon() };
  const wrk = findWrk(cache, install);
  if ('path' in wrk) return { generator: createWrk(wrk, scripts) };
  if (choice === 'wrk') throw new Error(`--loadgen wrk: ${wrk.note}`);
  return { generator: createAutocannon(), note: `wrk unavailable (${wrk.note}); using autocannon` };
}

function findWrk(cache: string, install: boolean): WrkCommand | { note: string } {
  const dir = path.join(cache, 'wrk');
  const cached: WrkCommand = { path: path.join(dir, 'wrk'), env: { LD_LIBRARY_PATH: dir } };
  if (works(cached)) return cached;
  let system = which('wrk');
  if (!system && install) system = aptInstallWrk();
  if (!system) return { note: install ? 'not installed and apt-get could not install it' : 'not installed (--no-install)' };
  copyWithLibraries(system, dir);
  return works(cached) ? cached : { path: system, env: {} };
}

function works(command: WrkCommand): boolean {
  try {
    execFileSync(command.path, ['-v'], { env: { ...process.env, ...command.env }, stdio: 'ignore' });
    return true;
  } catch (error) {
    // wrk -v exits 1 after printing its banner; only a missing binary or library is a failure.
    return (error as { status?: number }).status === 1;
  }
}

function which(name: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** apt-get install wrk, only as root and only where apt-get exists; never fatal. */
function aptInstallWrk(): string | undefined {
  if (process.getuid?.() !== 0 || !which('apt-get')) return undefined;
  console.error('bench: apt-get install -y wrk ...');
  try {
    execFileSync('apt-get', ['install', '-y', '-q', 'wrk'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } catch {
    try {
      execFileSync('apt-get', ['update', '-q'], { stdio: 'ignore' });
      execFileSync('apt-get', ['install', '-y', '-q', 'wrk'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    } catch {
      return undefined;
    }
  }
  return which('wrk');
}

/** Copies the binary and the libraries ldd resolves outside libc's usual set (LuaJIT) into `dir`. */
function copyWithLibraries(binary: string, dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(binary, path.join(dir, 'wrk'));
    fs.chmodSync(path.join(dir, 'wrk'), 0o755);
    const ldd = execFileSync('ldd', [binary], { encoding: 'utf8' });
    for (const match of ldd.matchAll(/=> (\S*(?:luajit|lua)\S*)/g)) {
      const library = match[1];
      if (library) fs.copyFileSync(library, path.join(dir, path.basename(library)));
    }
  } catch {
    // The system copy still works on this machine; only the offline copy is missing.
  }
}

function firstLine(error: unknown): string {
  const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
  return (stderr || String(error)).split('\n')[0] ?? '';
}
