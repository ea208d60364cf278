// The transpiler of the decorator-metadata layer: @swc/core, chosen by measurement (BENCHMARKS.md,
// "TypeScript loaders"): it emits tsc's `design:*` metadata, and costs a worker less start-up time
// and memory than TypeScript's own transpileModule.
import type { Options } from '@swc/core';
import { parseTsconfig, type TsConfigJson } from 'get-tsconfig';
import { createRequire } from 'node:module';
import type { Transpile } from './transpiler.js';

type CompilerOptions = NonNullable<TsConfigJson['compilerOptions']>;

/** Targets from which tsc defines class fields with [[Define]] semantics by default. */
const DEFINE_TARGETS = new Set(['es2022', 'es2023', 'es2024', 'esnext']);
/** Module settings under which tsc turns esModuleInterop on by default. */
const INTEROP_MODULES = new Set(['node16', 'node18', 'node20', 'nodenext', 'preserve']);

export function createTranspiler(tsconfigPath: string): Transpile {
  // @swc/core is CommonJS: require() loads it synchronously, when the first file needs it.
  const { transformSync } = createRequire(import.meta.url)('@swc/core') as typeof import('@swc/core');
  // parseTsconfig() follows `extends`, as tsc does.
  const options = swcOptions(parseTsconfig(tsconfigPath).compilerOptions ?? {});
  return (source, file, format) =>
    transformSync(source, {
      ...options,
      filename: file,
      module: { ...options.module, type: format === 'module' ? 'es6' : 'commonjs' },
      jsc: { ...options.jsc, parser: { syntax: 'typescript', decorators: true, tsx: file.endsWith('.tsx') } },
    }).code;
}

/** For the disk cache: @swc/core's version and the options this project's tsconfig.json gives it. */
export function identity(tsconfigPath: string): string {
  const { version } = createRequire(import.meta.url)('@swc/core/package.json') as { version: string };
  return JSON.stringify([version, swcOptions(parseTsconfig(tsconfigPath).compilerOptions ?? {})]);
}

/** What tsc would emit for these compiler options, in swc's terms (the module system is set per file). */
export function swcOptions(options: CompilerOptions): Options & { module: { importInterop: 'swc' | 'none' } } {
  const target = String(options.target ?? '').toLowerCase();
  const module = String(options.module ?? '').toLowerCase();
  const jsx = String(options.jsx ?? '').toLowerCase();
  return {
    swcrc: false,
    configFile: false,
    sourceMaps: 'inline',
    // Without esModuleInterop, tsc reads `require(x).default` for a default import: no helper.
    module: { type: 'commonjs', importInterop: (options.esModuleInterop ?? INTEROP_MODULES.has(module)) ? 'swc' : 'none' },
    jsc: {
      // The output runs on this Node: nothing needs lowering below what every supported Node runs.
      target: 'es2022',
      keepClassNames: true,
      transform: {
        legacyDecorator: options.experimentalDecorators === true,
        decoratorMetadata: options.emitDecoratorMetadata === true,
        useDefineForClassFields: options.useDefineForClassFields ?? DEFINE_TARGETS.has(target),
        verbatimModuleSyntax: options.verbatimModuleSyntax === true,
        react: {
          runtime: jsx === 'react-jsx' || jsx === 'react-jsxdev' ? 'automatic' : 'classic',
          development: jsx === 'react-jsxdev',
          importSource: options.jsxImportSource,
          pragma: options.jsxFactory,
          pragmaFrag: options.jsxFragmentFactory,
        },
      },
    },
  };
}
