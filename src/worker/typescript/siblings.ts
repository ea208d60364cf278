// The layer's shortcut for the resolution a project's ES modules make most: `./x.js` written for the
// `x.ts` beside it (TypeScript's rule under `module: nodenext`). tsx resolves it by asking Node for
// `./x.js` first, which fails (an error built and thrown), then for `./x.ts`. Taken in the layer's
// in-thread resolve hook (Node >= 22.15, register.ts): 30-55 ms less start-up for a worker of 200
// files on Node 24 (BENCHMARKS.md, "TypeScript loaders"). On Node 20 the hook would run on the loader
// thread, where each resolution's round trip costs what it costs whoever answers: measured, no
// gain, so not there. Everything else, and anything this is not sure of, stays tsx's: bare specifiers
// (tsconfig `paths`, packages), extensionless or query-bearing ones, a `.js` file that exists,
// parents that are not the project's TypeScript ES modules, and `--preserve-symlinks`.
import { realpathSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatOf, type ModuleFormat } from './transpiler.js';

/** The TypeScript files a JavaScript extension may stand for, in TypeScript's order. */
const SOURCES: Record<string, readonly string[]> = { '.js': ['.ts', '.tsx'], '.mjs': ['.mts'], '.cjs': ['.cts'] };
const RELATIVE = /^\.\.?\//;
const EXTENSION = /\.[cm]?js$/;

// NODE_OPTIONS may quote its words ("--preserve-symlinks"): quotes are dropped before comparing. A quoted
// value holding the flag's words reads as the flag, which only turns the shortcut off.
const preserveSymlinks =
  process.env.NODE_PRESERVE_SYMLINKS === '1' ||
  [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').replaceAll('"', '').split(/\s+/)].includes('--preserve-symlinks');

/**
 * The project's TypeScript file that `specifier`, imported from `parentUrl`, names with a JavaScript
 * extension, as Node would give its URL (symlinks resolved), and its module system; null when the
 * layer should leave the resolution to tsx.
 */
export function typescriptSibling(specifier: string, parentUrl: string | undefined): { url: string; format: ModuleFormat } | null {
  if (preserveSymlinks || parentUrl === undefined || !parentUrl.startsWith('file:') || !RELATIVE.test(specifier)) return null;
  const extension = EXTENSION.exec(specifier)?.[0];
  // Specifiers are URLs to Node: what a URL reads otherwise than a path (escapes, a query or
  // fragment, backslashes) stays tsx's.
  if (extension === undefined || /[%?#\\]/.test(specifier)) return null;
  // An ES module's imports (a CommonJS file's require() leaves its extension off, and stays tsx's).
  const parent = fileURLToPath(parentUrl);
  if (formatOf(parent) !== 'module') return null;
  const named = resolve(dirname(parent), specifier);
  // A JavaScript file of that name wins, as it does for Node and tsx; so does any doubt (ENOTDIR, EACCES).
  if (kind(named) !== 'none') return null;
  const stem = named.slice(0, -extension.length);
  for (const source of SOURCES[extension]!) {
    const candidate = stem + source;
    const found = kind(candidate);
    if (found === 'none') continue;
    if (found !== 'file') return null;
    let real: string;
    try {
      real = realpathSync(candidate);
    } catch {
      return null;
    }
    const format = formatOf(real);
    return format === null ? null : { url: pathToFileURL(real).href, format };
  }
  return null;
}

function kind(path: string): 'file' | 'none' | 'other' {
  try {
    const stat = statSync(path, { throwIfNoEntry: false });
    return stat === undefined ? 'none' : stat.isFile() ? 'file' : 'other';
  } catch {
    return 'other';
  }
}
