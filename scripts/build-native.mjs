// Build step: compiles native/clusterd.c (Node-API, so one build serves every Node version) into
// dist/native/clusterd.node with the C compiler and the headers of the Node running the build.
// node-gyp is not used: it needs Python and fetches headers from nodejs.org when the local ones
// are not where it looks, and one C file needs neither. clusterd runs without the helper (see
// src/native.ts), so a machine without a compiler gets one line here, never a failed install.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const source = 'native/clusterd.c';
const output = 'dist/native/clusterd.node';
const include = process.env.CLUSTERD_NODE_INCLUDE ?? resolve(dirname(process.execPath), '..', 'include', 'node');

function skip(reason) {
  console.warn(`clusterd: native helper not built (${reason}); clusterd runs without it (workers get sessions of their own, no orphan reaping)`);
  process.exit(0);
}

if (process.platform === 'win32') skip('not supported on Windows');
if (!existsSync(join(include, 'node_api.h'))) skip(`no Node-API headers in ${include}; set CLUSTERD_NODE_INCLUDE`);
if (existsSync(output) && statSync(output).mtimeMs >= statSync(source).mtimeMs) process.exit(0);

mkdirSync(dirname(output), { recursive: true });
const compiler = process.env.CC || 'cc';
const link = process.platform === 'darwin' ? ['-bundle', '-undefined', 'dynamic_lookup'] : ['-shared', '-fPIC'];
const result = spawnSync(compiler, ['-O2', '-Wall', '-Werror', ...link, '-I', include, '-o', output, source], { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
if (result.error) skip(`${compiler}: ${result.error.message}`);
if (result.status !== 0) skip(`${compiler} exited with ${result.status}: ${(result.stderr ?? '').trim().split('\n')[0]}`);
