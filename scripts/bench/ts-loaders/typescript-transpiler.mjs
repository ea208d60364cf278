// A candidate of `npm run bench:ts-loaders`: TypeScript's own ts.transpileModule as the transpiler
// of clusterd's decorator-metadata layer (src/worker/typescript), in place of swc. Plain JavaScript:
// the layer imports it on Node's loader thread too, where no TypeScript loader runs.
import { parseTsconfig } from 'get-tsconfig';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

export function createTranspiler(tsconfigPath) {
  const ts = createRequire(import.meta.url)('typescript');
  const { options } = ts.convertCompilerOptionsFromJson(parseTsconfig(tsconfigPath).compilerOptions ?? {}, dirname(tsconfigPath));
  return (source, file, format) =>
    ts.transpileModule(source, {
      fileName: file,
      compilerOptions: {
        ...options,
        module: format === 'module' ? ts.ModuleKind.ESNext : ts.ModuleKind.CommonJS,
        moduleResolution: undefined,
        inlineSourceMap: true,
        sourceMap: false,
        declaration: false,
        noEmit: false,
      },
    }).outputText;
}
