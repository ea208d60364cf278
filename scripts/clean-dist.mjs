// Build step, the first: empties dist/ so that what it holds is what this build made. tsc never
// deletes an output whose source is gone (dist/cli/node-options.js stayed after node-options.ts moved
// to src/system/), and `npm pack` ships whatever dist/ holds. dist/native/ is kept: the native helper
// is the install script's, and the build's last step keeps or rebuilds it (build-native.mjs).
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../dist', import.meta.url));
const KEEP = new Set(['native']);

let entries = [];
try {
  entries = readdirSync(dist);
} catch {
  // No dist/ yet: nothing to clean.
}
for (const entry of entries) if (!KEEP.has(entry)) rmSync(join(dist, entry), { recursive: true, force: true });
