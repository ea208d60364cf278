// What the decorator-metadata layer asks of a transpiler, and which module system a TypeScript
// file compiles to (Node's own rules, as tsc applies them under `module: nodenext`).
import { readFileSync } from 'node:fs';
import { dirname, extname, join, sep } from 'node:path';

export type ModuleFormat = 'module' | 'commonjs';

/** Compiles one TypeScript file to JavaScript of the given module system, with an inline source map. */
export type Transpile = (source: string, file: string, format: ModuleFormat) => string;

/** A transpiler module (its URL travels to the loader thread) exports `createTranspiler`. */
export interface TranspilerModule {
  /**
   * Builds the transpiler for the project whose tsconfig.json (absolute path) is given. Synchronous,
   * so that a thread loads the compiler only once it has a file to compile: on a given Node most
   * files go through one of the layer's hooks, and the other thread never pays for it.
   */
  createTranspiler(tsconfigPath: string): Transpile;
}

/** The transpiler of a module, built on the first call (then kept). */
export function lazyTranspiler(module: TranspilerModule, tsconfigPath: string): Transpile {
  let transpile: Transpile | undefined;
  return (source, file, format) => (transpile ??= module.createTranspiler(tsconfigPath))(source, file, format);
}

const TYPESCRIPT = new Set(['.ts', '.tsx', '.mts', '.cts']);
const packageTypes = new Map<string, ModuleFormat>();

/**
 * The module system of a TypeScript file the layer compiles, or null for a file it leaves to tsx:
 * not TypeScript, or inside node_modules (packages ship JavaScript; Node refuses to strip types
 * there too). `.mts`/`.cts` say it themselves; `.ts`/`.tsx` follow the nearest package.json `type`.
 */
export function formatOf(file: string): ModuleFormat | null {
  const extension = extname(file);
  if (!TYPESCRIPT.has(extension) || file.includes(`${sep}node_modules${sep}`)) return null;
  if (extension === '.mts') return 'module';
  if (extension === '.cts') return 'commonjs';
  return packageType(dirname(file));
}

function packageType(dir: string): ModuleFormat {
  const known = packageTypes.get(dir);
  if (known) return known;
  let type: ModuleFormat;
  try {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { type?: unknown };
    type = manifest.type === 'module' ? 'module' : 'commonjs';
  } catch (error) {
    // No package.json here (or one Node could not read either): ask the parent, as Node does.
    const parent = dirname(dir);
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === dir) type = 'commonjs';
    else type = packageType(parent);
  }
  packageTypes.set(dir, type);
  return type;
}
