// The examples a user copies: the Kubernetes Dockerfile must build as written. Docker is not here,
// so its steps are read: `npm ci` runs the project's `install` and `prepare` scripts (the native
// helper, the build), which need the sources, so an install before they are copied must skip them.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(path: string): string[] {
  return readFileSync(path, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

test('the Kubernetes Dockerfile installs without scripts before the sources are in, then builds with them', (t) => {
  const steps = instructions(`${root}/examples/kubernetes/Dockerfile`);
  const sources = steps.findIndex((step) => /^COPY\s+\.\s+\.$/.test(step));
  t.true(sources > 0, 'a COPY . . in the build stage');
  for (const step of steps.slice(0, sources)) {
    if (/^RUN\b.*\bnpm\s+(ci|install|i)\b/.test(step)) t.regex(step, /--ignore-scripts/, `before the sources: ${step}`);
  }
  t.true(steps.slice(sources).some((step) => /^RUN\b.*\bnpm run build\b/.test(step)), 'the build runs once the sources are in');
  // What it copies first exists, and so does the entry it runs.
  for (const file of ['package.json', 'package-lock.json', 'examples/hello.ts']) t.true(existsSync(`${root}/${file}`), file);
  t.true(steps.some((step) => step.startsWith('CMD') && step.includes('examples/hello.ts')));
});
