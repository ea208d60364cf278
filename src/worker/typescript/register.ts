// The decorator-metadata layer: compiles a project's TypeScript files with a transpiler that emits
// what tsc emits for `emitDecoratorMetadata` (esbuild, under tsx, does not), and leaves everything
// else to tsx: resolution (tsconfig `paths`, `.js` -> `.ts`), JavaScript, packages.
//
// tsx hooks itself into up to three places, depending on the Node version: synchronous module
// hooks (module.registerHooks, on the newest lines), asynchronous ones (module.register) and the
// CommonJS extension handlers (require.extensions). Each chain calls the hook installed last
// first, so the layer, installed after tsx in every chain that exists, compiles the project's
// files wherever tsx would have.
import Module from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LayerData } from './hooks.js';
import { formatOf, type ModuleFormat, type Transpile, type TranspilerModule } from './transpiler.js';

type ExtensionHandler = (module: { _compile(code: string, filename: string): void }, filename: string) => void;
const cjs = Module as unknown as { _extensions: Record<string, ExtensionHandler> };

/** The synchronous hooks API (Node >= 22.15 / 23.5), absent from @types/node 20. */
type RegisterHooks = (hooks: {
  load(url: string, context: object, nextLoad: (url: string, context: object) => unknown): unknown;
}) => unknown;

/** Installs the layer in this process (after `--import tsx`); resolves once the transpiler is loaded. */
export async function installLayer({ tsconfigPath, transpilerUrl }: LayerData): Promise<void> {
  const { createTranspiler } = (await import(transpilerUrl)) as TranspilerModule;
  const compile = cached(await createTranspiler(tsconfigPath));
  const data: LayerData = { tsconfigPath, transpilerUrl };
  Module.register(new URL('./hooks.js', import.meta.url), { data });

  const registerHooks = (Module as unknown as { registerHooks?: RegisterHooks }).registerHooks;
  registerHooks?.({
    load(url, context, nextLoad) {
      const file = url.startsWith('file:') ? fileURLToPath(url) : null;
      const format = file === null ? null : formatOf(file);
      if (file === null || format === null) return nextLoad(url, context);
      return { format, source: compile(file, format), shortCircuit: true };
    },
  });

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

/**
 * A file may reach the layer twice, through a synchronous hook and then the extension handler
 * (Node 24 hands a CommonJS main module on): compile it once.
 */
function cached(transpile: Transpile): (file: string, format: ModuleFormat) => string {
  const outputs = new Map<string, string>();
  return (file, format) => {
    const key = `${format}:${file}`;
    let output = outputs.get(key);
    if (output === undefined) {
      output = transpile(readFileSync(file, 'utf8'), file, format);
      outputs.set(key, output);
    }
    return output;
  };
}
