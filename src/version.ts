// clusterd's own version, from its package.json: whatever the current directory, and not the version
// of the app that installed clusterd as a dependency (what yargs' default `--version` finds by
// walking up from the working directory).
import { readFileSync } from 'node:fs';

let version: string | undefined;

export function clusterdVersion(): string {
  if (version !== undefined) return version;
  // The same relative path from src/ (tsx), dist/<folder>/ and dist/bundle/: the package root is two up
  // from any file one folder below src/ or dist/, and this module is bundled into such a file.
  const candidates = [new URL('../../package.json', import.meta.url), new URL('../package.json', import.meta.url)];
  for (const candidate of candidates) {
    try {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'clusterd' && typeof pkg.version === 'string') return (version = pkg.version);
    } catch {
      // the next candidate
    }
  }
  return (version = 'unknown');
}
