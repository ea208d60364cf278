#!/usr/bin/env node
// Thin launcher: the CLI itself is compiled from src/cli by `npm run build` (the prepare script).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2));
