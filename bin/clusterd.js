#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/cli and bundled into dist/bundle by `npm run build`
// (the prepare script).
import module from 'node:module';

// Node >= 22.1 keeps compiled code on disk between runs: `clusterd status` starts much faster.
// Feature-detected; a failure to cache is never an error.
module.enableCompileCache?.();

const { main } = await import('../dist/bundle/main.js');
main(process.argv.slice(2));
