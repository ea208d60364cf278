// The decorator-metadata layer's module hooks for module.register(), on Node versions without
// module.registerHooks (20, and 22 before 22.15): they run on Node's loader thread, each `import` of
// a project's TypeScript file passes here before tsx's hooks (registered earlier, so called later),
// and the file is compiled here instead.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatOf, lazyTranspiler, type Transpile, type TranspilerModule } from './transpiler.js';

/** What register() passes to initialize(). */
export interface LayerData {
  tsconfigPath: string;
  /** URL of the module that exports createTranspiler(). */
  transpilerUrl: string;
}

interface LoadResult {
  format?: string | null;
  source?: string | ArrayBuffer | Uint8Array | null;
  shortCircuit?: boolean;
}
type NextLoad = (url: string, context: object) => Promise<LoadResult>;

let transpile: Transpile | undefined;

/** Node's `initialize` hook: gets register()'s data; the transpiler itself loads with the first file. */
export async function initialize({ tsconfigPath, transpilerUrl }: LayerData): Promise<void> {
  transpile = lazyTranspiler((await import(transpilerUrl)) as TranspilerModule, tsconfigPath);
}

/** Node's `load` hook: compiles the project's ES module TypeScript files, hands the rest on. */
export async function load(url: string, context: object, nextLoad: NextLoad): Promise<LoadResult> {
  const file = url.startsWith('file:') ? fileURLToPath(url) : null;
  const format = file === null ? null : formatOf(file);
  if (file === null || format === null) return nextLoad(url, context);
  // A CommonJS file goes to Node's CommonJS loader without a source: the layer's require hook
  // (register.ts) compiles it there, so that its own require() calls reach that hook as well.
  if (format === 'commonjs') return { format, source: null, shortCircuit: true };
  // Read synchronously: this thread serves only the module hooks, and an import waits for each file
  // in turn, so fs/promises' round trips to the thread pool per file (open, stat, read, close) added
  // up to about 150 ms of a 200-file worker's start (BENCHMARKS.md, "TypeScript loaders").
  return { format, source: transpile!(readFileSync(file, 'utf8'), file, format), shortCircuit: true };
}
