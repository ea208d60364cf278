// Build step: bundles the compiled CLI (dist/cli/main.js) and its dependencies into dist/bundle/,
// which bin/clusterd.js runs. One file per entry instead of a few hundred modules (yargs,
// @grpc/grpc-js, protobufjs) takes about 60 ms off every command's start-up on Node 20, where
// there is no compile cache (BENCHMARKS.md, "clusterd status"). The master's code is split into a
// chunk of its own, loaded by `start` only. dist/bundle/ sits at the same depth as dist/cli/, so
// paths the code builds from import.meta.url (../worker/preload.js, ../../proto/...) hold in both.
// Worker processes do not use the bundle: they load dist/worker/preload.js.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

// yargs lays out --help with cliui, whose ES module build wraps text every N characters, mid-word
// ("next fre / e worker"); its CommonJS build wraps at word boundaries (wrap-ansi). Use that one.
const cliuiCommonJs = {
  name: 'cliui-commonjs',
  setup(bundle) {
    const require = createRequire(import.meta.url);
    bundle.onResolve({ filter: /^cliui$/ }, () => ({ path: require.resolve('cliui') }));
  },
};

// Chunks are named by content hash: without this, each build would leave the last one's beside it.
rmSync('dist/bundle', { recursive: true, force: true });

await build({
  entryPoints: ['dist/cli/main.js'],
  outdir: 'dist/bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  logLevel: 'warning',
  plugins: [cliuiCommonJs],
  // CommonJS dependencies call require() for Node's own modules: give ESM chunks a real one.
  banner: { js: "import { createRequire as __clusterdCreateRequire } from 'node:module'; const require = __clusterdCreateRequire(import.meta.url);" },
});
