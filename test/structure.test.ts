// Issue 11: the shape of src/ as rules a change cannot break unnoticed: no runtime import cycles
// (type-only imports do not count: they vanish at run time), the master never loads the CLI, and
// the worker runtime loads nothing of the master's or the CLI's (it runs inside the app).
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

/** Each file's static runtime imports of other files in src/ (relative paths from src/). */
function runtimeImports(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files(src)) {
    const text = readFileSync(file, 'utf8');
    const deps: string[] = [];
    for (const match of text.matchAll(/^(?:import|export)\s+(?!type\s)([\s\S]*?)\s+from\s+'(\.[^']+)'/gm)) {
      const names = match[1]!.trim();
      // `import { type A, type B } from` is type-only too.
      if (/^\{[^}]*\}$/.test(names) && names.slice(1, -1).split(',').every((name) => /^\s*type\s/.test(name) || name.trim() === '')) continue;
      deps.push(relative(src, normalize(join(dirname(file), match[2]!.replace(/\.js$/, '.ts')))));
    }
    graph.set(relative(src, file), deps);
  }
  return graph;
}

test('src/ has no runtime import cycles', (t) => {
  const graph = runtimeImports();
  const state = new Map<string, 'visiting' | 'done'>();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'visiting') {
      cycles.push([...path.slice(path.indexOf(file)), file].join(' -> '));
      return;
    }
    state.set(file, 'visiting');
    for (const dep of graph.get(file) ?? []) if (graph.has(dep)) visit(dep, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file, []);
  t.deepEqual(cycles, []);
});

test('the master never imports the CLI; the worker runtime neither the master nor the CLI', (t) => {
  const graph = runtimeImports();
  const reach = (start: string): Set<string> => {
    const seen = new Set<string>();
    const stack = [start];
    while (stack.length > 0) {
      const file = stack.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      stack.push(...(graph.get(file) ?? []));
    }
    return seen;
  };
  const bad = [...graph.keys()].filter((file) => file.startsWith('master/')).flatMap((file) => (graph.get(file) ?? []).filter((dep) => dep.startsWith('cli/')).map((dep) => `${file} -> ${dep}`));
  t.deepEqual(bad, []);
  const runtime = [...reach('worker/preload.ts')].filter((file) => file.startsWith('master/') || file.startsWith('cli/') || file.startsWith('control/'));
  t.deepEqual(runtime, []);
});
