// A control server on a fake source and fake operations, in this process, with a client.
import type { ExecutionContext } from 'ava';
import { ControlClient } from '../../../src/control/client.js';
import { startControlServer, type ControlServer } from '../../../src/control/server.js';
import { tempDir } from './dirs.js';
import { FakeOperations } from './fake-operations.js';
import { FakeSource, twoWorkers } from './fake-source.js';

/** Serves `name` (api by default) with FakeOperations, or none with `operations: false`. */
export async function serveOps(t: ExecutionContext, { name = 'api', tcp, operations = true, dir = tempDir(t) }: { name?: string; dir?: string; tcp?: { host: string; port: number; token: string }; operations?: boolean } = {}): Promise<{
  server: ControlServer;
  source: FakeSource;
  ops: FakeOperations;
  client: ControlClient;
}> {
  const source = new FakeSource(twoWorkers(name));
  const ops = new FakeOperations(source);
  const server = await startControlServer({ name, source, operations: operations ? ops : undefined, dir, tcp });
  t.teardown(() => server.close());
  const client = new ControlClient({ transport: 'unix', socketPath: server.socketPath });
  t.teardown(() => client.close());
  return { server, source, ops, client };
}
