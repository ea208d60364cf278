#!/usr/bin/env node
// Thin launcher: the CLI itself is compiled from src/cli by `npm run build` (the prepare script).
import module from 'node:module';

// Node >= 22.1 keeps compiled code on disk between runs: `clusterd status` starts much faster.
// Feature-detected; a failure to cache is never an error.
module.enableCompileCache?.();

const { main } = await import('../dist/cli/main.js');
main(process.argv.slice(2));
