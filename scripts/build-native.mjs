// Build step: compiles native/clusterd.c (Node-API, so one build serves every Node version) into
// dist/native/clusterd.node with the C compiler and the headers of the Node running the build.
// node-gyp is not used: it needs Python and fetches headers from nodejs.org when the local ones
// are not where it looks, and one C file needs neither. clusterd runs without the helper (see
// src/system/native.ts), so a machine without a compiler gets one line here, never a failed install.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// From the package's root, wherever this runs from: `node node_modules/clusterd/scripts/build-native.mjs`
// in a project builds the installed package's helper, as `npm rebuild clusterd` does.
const root = fileURLToPath(new URL('..', import.meta.url));
const source = join(root, 'native/clusterd.c');
const output = join(root, 'dist/native/clusterd.node');
const include = process.env.CLUSTERD_NODE_INCLUDE ?? resolve(dirname(process.execPath), '..', 'include', 'node');

function skip(reason) {
  console.warn(`clusterd: native helper not built (${reason}); clusterd runs without it (workers get sessions of their own, no orphan reaping)`);
  process.exit(0);
}

/** The functions the helper exports, as native/clusterd.c registers them in init(). */
function exportsOfSource() {
  return [...readFileSync(source, 'utf8').matchAll(/\{"(\w+)", NULL, js_\w+,/g)].map((match) => match[1]);
}

/**
 * Why the helper at `output` is not to be kept, or null when it is: it must load in this Node on
 * this machine with every function the source has, and be no older than the source (an edit here).
 * Dates alone cannot tell: npm unpacks a package's files in any order, and a binary from another
 * platform (macOS, arm64, musl) or from an older source is as new as anything beside it. Loaded in a
 * child process, so that a binary that crashes when loaded cannot take this script with it.
 */
function unusable() {
  if (!existsSync(output)) return 'none yet';
  if (statSync(output).mtimeMs < statSync(source).mtimeMs) return 'older than its source';
  const check = `const m = require(${JSON.stringify(output)}); const want = ${JSON.stringify(exportsOfSource())};
const missing = want.filter((name) => typeof m[name] !== 'function'); if (missing.length) { console.log('without ' + missing.join(', ')); process.exit(1); }`;
  const loaded = spawnSync(process.execPath, ['-e', check], { encoding: 'utf8' });
  if (loaded.status === 0) return null;
  return (loaded.stdout.trim() || loaded.stderr.split('\n').find((line) => line.startsWith('Error')) || `exit ${loaded.status ?? loaded.signal}`).slice(0, 200);
}

if (process.platform === 'win32') skip('not supported on Windows');
const refused = unusable();
if (refused === null) process.exit(0);
// Why a helper there is rebuilt (another platform's, an older source's): said, not just done.
if (existsSync(output)) console.error(`clusterd: rebuilding the native helper: the one in place is ${refused}`);
if (!existsSync(join(include, 'node_api.h'))) skip(`no Node-API headers in ${include}; set CLUSTERD_NODE_INCLUDE`);

mkdirSync(dirname(output), { recursive: true });
const compiler = process.env.CC || 'cc';
const link = process.platform === 'darwin' ? ['-bundle', '-undefined', 'dynamic_lookup'] : ['-shared', '-fPIC'];
// Built beside it, then renamed over it: a master that has the old one loaded keeps its mapping.
const building = `${output}.${process.pid}.tmp`;
const result = spawnSync(compiler, ['-O2', '-Wall', '-Werror', ...link, '-I', include, '-o', building, source], { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
if (result.error || result.status !== 0) rmSync(building, { force: true });
if (result.error) skip(`${compiler}: ${result.error.message}`);
if (result.status !== 0) skip(`${compiler} exited with ${result.status}: ${(result.stderr ?? '').trim().split('\n')[0]}`);
renameSync(building, output);
