// Build step: writes dist/clusterd.config.schema.json, the JSON Schema of clusterd's config file,
// from the same option table the command line is built from (src/cli/start-options.ts), so the
// two cannot drift. Editors use it through the file's "$schema" key (README, "Config file").
import { readFileSync, writeFileSync } from 'node:fs';
import { configSchema } from '../dist/cli/start-options.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
writeFileSync(new URL('../dist/clusterd.config.schema.json', import.meta.url), `${JSON.stringify(configSchema(version), null, 2)}\n`);
