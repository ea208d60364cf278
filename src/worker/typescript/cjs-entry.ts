// Loaded with `--import`, after tsx, into the workers of a `.cts` entry where tsx's module hooks run
// on Node's loader thread (module.register: Node 20, and 22 and 24 before tsx moves them in-thread,
// see tsxHooksInThread in src/master/typescript.ts). There tsx compiles a `.cts` in its ES module
// hook and hands Node the source, and Node runs a CommonJS module it was given the source of with a
// require() of its own, which loads every child through those hooks too; tsx compiles only `.cts`
// files there, so the entry's `require('./util')` of a `.ts` file ran its TypeScript as JavaScript
// (SyntaxError: Unexpected token 'export'). The hook installed here gives the entry to Node's
// CommonJS loader instead, as tsx does with a `.ts` entry of a CommonJS package: tsx's require hooks
// compile every file, and the entry has the require() a `.js` entry has (require.cache).
import { realpathSync } from 'node:fs';
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { EntryHookData } from './cjs-entry-hooks.js';

const main = process.argv[1];
// The app's own fork() passes this flag on, to children whose main may be anything.
if (main?.endsWith('.cts')) {
  const data: EntryHookData = { urls: [pathToFileURL(main).href, pathToFileURL(realpathOrSelf(main)).href] };
  register(new URL('./cjs-entry-hooks.js', import.meta.url), { data });
}

/** Where Node's loader finds the main module (symlinks resolved), or the path as given if it cannot be read: Node then says why. */
function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
