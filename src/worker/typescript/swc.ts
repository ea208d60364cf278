// The transpiler of the decorator-metadata layer: @swc/core, chosen by measurement (BENCHMARKS.md,
// "TypeScript loaders"): it emits tsc's `design:*` metadata, and costs a worker less start-up time
// and memory than TypeScript's own transpileModule.
import type { Options } from '@swc/core';
import { parseTsconfig, type TsConfigJson } from 'get-tsconfig';
import { createRequire } from 'node:module';
import { compileFunction } from 'node:vm';
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
  return (source, file, format) => {
    try {
      return transformSync(source, {
        ...options,
        filename: file,
        module: { ...options.module, type: format === 'module' ? 'es6' : 'commonjs' },
        jsc: { ...options.jsc, parser: { syntax: 'typescript', decorators: true, tsx: file.endsWith('.tsx') } },
      }).code;
    } catch (error) {
      throw syntaxError(error, source);
    }
  };
}

/**
 * swc's error for a file it cannot parse, as a SyntaxError whose first line says where, as tsx's does
 * (`/srv/src/app.ts:3:19: Expression expected`), followed by swc's code frames. swc's own message
 * begins `  x Expression expected`, which was all a crash line quoted, and names the place only in
 * its frame (`,-[/srv/src/app.ts:3:1]`: the line; the column is the caret's); under RUST_BACKTRACE=1
 * it ends with swc's Rust backtrace (`Caused by:`, `Stack backtrace:`), which is left out. Any other
 * error (the native binding did not load) is returned as it is.
 */
export function syntaxError(error: unknown, source: string): unknown {
  // eslint-disable-next-line no-control-regex -- colours, should swc add them
  const lines = (error instanceof Error ? error.message : '').replace(/\u001b\[[0-9;]*m/g, '').split('\n');
  const what = /^\s*x (.+)$/.exec(lines[0] ?? '');
  const where = /^\s*,-\[(.+):(\d+):(\d+)\]$/.exec(lines[1] ?? '');
  if (!what || !where) return error;
  const [, file, line] = where;
  const column = caretColumn(lines, Number(line), source.split(/\r?\n/)[Number(line) - 1] ?? '') ?? Number(where[3]);
  // The frames, up to the first blank line (after it: `Caused by:` and the backtrace).
  const end = lines.indexOf('');
  const frames = lines.slice(0, end === -1 ? undefined : end);
  return atPlace(new SyntaxError(`${file}:${line}:${column}: ${what[1]!.trim()}\n${frames.join('\n')}`), file!, Number(line), column);
}

/**
 * `error`, its stack one frame: the user's place (`file`:`line`:`column`). The frames where it was
 * made are all clusterd's and Node's loaders', and Node, through the source maps tsx turns on,
 * headed the crash with the first one's source line: clusterd's own. The frame is a function
 * compiled as if it stood at that place, whose line carries Node's marker so that Node quotes no
 * line of it instead (GetErrorSource in node_errors.cc; Node's own type stripping marks its throws
 * of swc's errors alike): the crash begins with the error's message.
 */
function atPlace(error: SyntaxError, file: string, line: number, column: number): SyntaxError {
  const capture = compileFunction('capture(error); // node-do-not-add-exception-line', ['capture', 'error'], { filename: file, lineOffset: line - 1, columnOffset: column - 1 });
  const limit = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = 1;
    capture(Error.captureStackTrace, error);
  } catch {
    // An app that froze Error: the stack as it was made.
  } finally {
    if (Error.stackTraceLimit !== limit) Error.stackTraceLimit = limit;
  }
  return error;
}

/**
 * The column (from 1) of the place the first frame's caret marks on line `line`, whose source is
 * `text`, or null when the frame is not as expected. The frame shows that line after a gutter
 * (` 3 | `), then a line of markers (`   :       ^`): the place's own is a run of `^` (runs that carry a
 * label, `^|`, mark what it relates to). Positions there are display columns: a tab runs to the next
 * multiple of 4, a wide character (CJK) takes two.
 */
function caretColumn(lines: readonly string[], line: number, text: string): number | null {
  const at = lines.findIndex((frame) => new RegExp(`^\\s*${line} \\| `).test(frame));
  const markers = lines[at + 1];
  if (at === -1 || markers === undefined || !/^\s*:/.test(markers)) return null;
  const gutter = lines[at]!.indexOf('| ') + 2;
  const runs = [...markers.slice(gutter).matchAll(/[\^|]+/g)];
  const run = runs.find((match) => !match[0].includes('|')) ?? runs[0];
  if (run === undefined) return null;
  let width = 0;
  let index = 0;
  for (const char of text) {
    if (width >= run.index) break;
    width = char === '\t' ? width + 4 - (width % 4) : width + (WIDE.test(char) ? 2 : 1);
    index += char.length;
  }
  return index + 1;
}

/** The characters a terminal gives two columns (East Asian wide and fullwidth, emoji), as swc's frames do. */
const WIDE = /[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{1f300}-\u{1f64f}\u{1f900}-\u{1f9ff}\u{20000}-\u{3fffd}]/u;

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
