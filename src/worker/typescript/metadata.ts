// Loaded with `--import`, right after tsx, into the workers of a project whose tsconfig.json sets
// `emitDecoratorMetadata`: installs the decorator-metadata layer (register.ts) with swc, for the
// tsconfig.json the master found for the entry (TSX_TSCONFIG_PATH, which tsx reads too).
import { installLayer } from './register.js';

const tsconfigPath = process.env.TSX_TSCONFIG_PATH;
if (!tsconfigPath) throw new Error('clusterd: the decorator-metadata loader needs TSX_TSCONFIG_PATH (set by the master)');
await installLayer({ tsconfigPath, transpilerUrl: new URL('./swc.js', import.meta.url).href });
