// `--import`ed after tsx, as dist/worker/typescript/metadata.js is: the same layer, with
// typescript-transpiler.mjs as its transpiler.
import { installLayer } from '../../../dist/worker/typescript/register.js';

await installLayer({
  tsconfigPath: process.env.TSX_TSCONFIG_PATH,
  transpilerUrl: new URL('./typescript-transpiler.mjs', import.meta.url).href,
});
