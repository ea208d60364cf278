// Issue 13, point 2: a project whose tsconfig.json sets experimentalDecorators and
// emitDecoratorMetadata runs as tsc would build it: the `design:paramtypes` metadata is there, so
// constructor injection works and requests succeed (under esbuild alone the app starts, listens,
// and every request fails). In both module systems, with tsconfig `paths` resolved by tsx.
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatOf } from '../../src/worker/typescript/transpiler.js';
import { swcOptions } from '../../src/worker/typescript/swc.js';
import { fixture, get, killOnTeardown, startCluster } from '../helpers/cluster.js';

const injected = test.macro({
  async exec(t, project: string, kind: string) {
    const cluster = await startCluster(fixture(`${project}/src/main.ts`), { instances: 2, cwd: tmpdir() });
    killOnTeardown(t, cluster.process);
    const workers = new Set<string>();
    for (let asked = 0; asked < 50 && workers.size < 2; asked++) {
      const response = await get(cluster.port);
      t.is(response.status, 200, response.body);
      const answer = JSON.parse(response.body) as { answer: string; worker: string };
      // Controller <- Greeter <- Clock: two levels of injection, Clock imported through `paths`.
      t.is(answer.answer, `hello ${kind}, 2026`);
      workers.add(answer.worker);
    }
    t.deepEqual([...workers].sort(), ['1', '2']);
    t.is(await cluster.stop(), 0);
  },
  title: (_title, project: string, kind: string) => `${kind}: constructor injection from decorator metadata works on every worker (${project})`,
});
test(injected, 'ts-decorators-cjs', 'cjs');
test(injected, 'ts-decorators-esm', 'esm');

test('formatOf: the module system of a file the layer compiles, as Node decides it', (t) => {
  t.is(formatOf(fixture('ts-decorators-cjs/src/main.ts')), 'commonjs');
  t.is(formatOf(fixture('ts-decorators-esm/src/lib/clock.ts')), 'module');
  t.is(formatOf(fixture('entry-mts.mts')), 'module');
  t.is(formatOf(fixture('entry-cts.cts')), 'commonjs');
  // The repository's package.json says "module": test/fixtures has none of its own.
  t.is(formatOf(fixture('entry-ts.ts')), 'module');
  t.is(formatOf(fixture('hello.js')), null);
  t.is(formatOf('/srv/app/node_modules/pkg/index.ts'), null);
});

test('formatOf: a folder without package.json takes the type of the nearest one above', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-format-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'esm/deeper/still'), { recursive: true });
  mkdirSync(join(dir, 'cjs/deeper'), { recursive: true });
  writeFileSync(join(dir, 'esm/package.json'), '{ "type": "module" }');
  writeFileSync(join(dir, 'cjs/package.json'), '{ "name": "no-type" }');
  t.is(formatOf(join(dir, 'esm/deeper/still/main.ts')), 'module');
  t.is(formatOf(join(dir, 'cjs/deeper/main.ts')), 'commonjs');
  t.is(formatOf(join(dir, 'cjs/deeper/main.tsx')), 'commonjs');
});

const swc = test.macro({
  exec(t, options: Record<string, unknown>, expected: Record<string, unknown>) {
    const { jsc, module } = swcOptions(options);
    const actual = {
      legacyDecorator: jsc!.transform!.legacyDecorator,
      decoratorMetadata: jsc!.transform!.decoratorMetadata,
      useDefineForClassFields: jsc!.transform!.useDefineForClassFields,
      importInterop: module.importInterop,
    };
    t.like(actual, expected);
  },
  title: (_title, options: Record<string, unknown>) => `swcOptions: what tsc does with ${JSON.stringify(options)}`,
});
test(swc, { experimentalDecorators: true, emitDecoratorMetadata: true }, { legacyDecorator: true, decoratorMetadata: true, importInterop: 'none' });
// Class fields: [[Define]] from ES2022 on unless said otherwise (NestJS's default target is ES2021).
test(swc, { target: 'ES2021' }, { useDefineForClassFields: false });
test(swc, { target: 'ES2022' }, { useDefineForClassFields: true });
test(swc, { target: 'ESNext', useDefineForClassFields: false }, { useDefineForClassFields: false });
// esModuleInterop: on when set, and by default under module nodenext.
test(swc, { esModuleInterop: true }, { importInterop: 'swc' });
test(swc, { module: 'NodeNext' }, { importInterop: 'swc' });
