// The decorator-metadata layer: compiles a project's TypeScript files with a transpiler that emits
// what tsc emits for `emitDecoratorMetadata` (esbuild, under tsx, does not), and leaves everything
// else to tsx: resolution (tsconfig `paths`, `.js` -> `.ts`), JavaScript, packages.
//
// tsx hooks itself into up to three places, depending on the Node version: synchronous module
// hooks (module.registerHooks, on the newest lines), asynchronous ones (module.register) and the
// CommonJS extension handlers (require.extensions). Each chain calls the hook installed last
// first. The layer, installed after tsx, takes the synchronous hooks where Node has them (they come
// before any asynchronous hook) or else the asynchronous ones, and the extension handlers (which
// Node prefers to any hook's source for require() once someone replaced them): it compiles the
// project's files wherever tsx would have. Checked on Node 20.20, 22.16, 24.10 and 24.22.
import Module from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LayerData } from './hooks.js';
import { typescriptSibling } from './siblings.js';
import { formatOf, lazyTranspiler, type ModuleFormat, type TranspilerModule } from './transpiler.js';

type ExtensionHandler = (module: { _compile(code: string, filename: string): void }, filename: string) => void;
const cjs = Module as unknown as { _extensions: Record<string, ExtensionHandler> };

/** The synchronous hooks API (Node >= 22.15 / 23.5), absent from @types/node 20. */
type RegisterHooks = (hooks: {
  resolve(specifier: string, context: { parentURL?: string }, nextResolve: (specifier: string, context: object) => unknown): unknown;
  load(url: string, context: object, nextLoad: (url: string, context: object) => unknown): unknown;
}) => unknown;

/** Installs the layer in this process (after `--import tsx`); the transpiler loads with the first file. */
export async function installLayer({ tsconfigPath, transpilerUrl }: LayerData): Promise<void> {
  const transpile = lazyTranspiler((await import(transpilerUrl)) as TranspilerModule, tsconfigPath);
  // Compiled anew each time: only a CommonJS main module, where tsx uses synchronous hooks too
  // (Node 24.22), reaches the layer twice (the hook, then the extension handler).
  const compile = (file: string, format: ModuleFormat): string => transpile(readFileSync(file, 'utf8'), file, format);
  const registerHooks = (Module as unknown as { registerHooks?: RegisterHooks }).registerHooks;
  if (registerHooks) {
    // In-thread hooks see every import and require before any asynchronous hook does, tsx's
    // included: no loader thread is needed.
    registerHooks({
      resolve(specifier, context, nextResolve) {
        const sibling = typescriptSibling(specifier, context.parentURL);
        return sibling === null ? nextResolve(specifier, context) : { ...sibling, shortCircuit: true };
      },
      load(url, context, nextLoad) {
        const file = url.startsWith('file:') ? fileURLToPath(url) : null;
        const format = file === null ? null : formatOf(file);
        if (file === null || format === null) return nextLoad(url, context);
        return { format, source: compile(file, format), shortCircuit: true };
      },
    });
  } else {
    const data: LayerData = { tsconfigPath, transpilerUrl };
    Module.register(new URL('./hooks.js', import.meta.url), { data });
  }

  // require() of a CommonJS TypeScript file. '.cts' has no handler of its own: Node uses '.js'.
  for (const extension of ['.js', '.ts', '.tsx']) {
    const previous = cjs._extensions[extension];
    if (!previous) continue;
    cjs._extensions[extension] = function (module, filename) {
      if (formatOf(filename) !== 'commonjs') return previous.call(this, module, filename);
      module._compile(compile(filename, 'commonjs'), filename);
    };
  }
}
