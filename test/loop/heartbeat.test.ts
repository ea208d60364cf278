// The heartbeat's writes (src/loop/heartbeat.ts) against a real pipe that its reader stops reading:
// the worker's loop must never wait on the master.
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';

test('a full pipe skips beats without blocking the loop, and beating goes on once it is read again', async (t) => {
  const heartbeat = new URL('../../dist/loop/heartbeat.js', import.meta.url).href;
  // The child fills the pipe itself (the heartbeat made it non-blocking) and keeps it full for 300 ms,
  // its loop turning meanwhile; once the parent reads again, it stops filling, says how much it wrote,
  // and beats alone for 100 ms more.
  const script = `
    import { writeSync } from 'node:fs';
    import { startHeartbeat } from ${JSON.stringify(heartbeat)};
    startHeartbeat({ fd: 4, beatMs: 5 });
    let filled = 0;
    const chunk = Buffer.alloc(4096);
    const fill = () => {
      for (;;) {
        try { filled += writeSync(4, chunk); } catch (error) { return error.code; }
      }
    };
    console.log('full', fill());
    let turns = 0;
    const turning = setInterval(() => { turns++; fill(); }, 5);
    setTimeout(() => {
      console.log('turned', turns);
      process.stdin.once('data', () => { clearInterval(turning); console.log('filled', filled); setTimeout(() => process.exit(0), 100); });
    }, 300);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit', 'ignore', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  const beats = child.stdio[4] as Readable;
  beats.pause();
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const said = async (pattern: RegExp): Promise<RegExpExecArray> => {
    for (;;) {
      const match = pattern.exec(out);
      if (match) return match;
      await once(child.stdout!, 'data');
    }
  };
  const [, code] = await said(/full (\S+)\n/);
  t.is(code, 'EAGAIN');
  const [, turns] = await said(/turned (\d+)\n/);
  t.true(Number(turns) > 10, `the loop turned ${turns} times in 300 ms on a full pipe`);

  let received = 0;
  beats.on('data', (chunk: Buffer) => (received += chunk.length));
  beats.resume();
  child.stdin!.write('go\n');
  const [, filled] = await said(/filled (\d+)\n/);
  const [exitCode] = (await once(child, 'exit')) as [number];
  t.is(exitCode, 0);
  if (!beats.readableEnded) await once(beats, 'end');
  // What the child wrote to fill the pipe, what the parent had buffered of it, and beats after.
  // More than the first beat (before the filling) and the filling: the beats went on after EAGAIN.
  t.true(received >= Number(filled) + 3 * 8, `read ${received} bytes, ${filled} written to fill the pipe`);
});

test('a pipe whose reader is gone (EPIPE) ends the beating, and the loop goes on', async (t) => {
  const heartbeat = new URL('../../dist/loop/heartbeat.js', import.meta.url).href;
  // The child counts the heartbeat's writes on fd 4 (fs.writeSync wrapped before the heartbeat imports
  // it), starts beating once the parent has closed its end, and reports after 200 ms of 5 ms beats.
  const script = `
    import fs from 'node:fs';
    import { syncBuiltinESMExports } from 'node:module';
    const writeSync = fs.writeSync;
    const calls = [];
    fs.writeSync = (fd, ...rest) => {
      if (fd !== 4) return writeSync(fd, ...rest);
      try {
        const written = writeSync(fd, ...rest);
        calls.push('written');
        return written;
      } catch (error) {
        calls.push(error.code);
        throw error;
      }
    };
    syncBuiltinESMExports();
    process.stdin.once('data', async () => {
      const { startHeartbeat } = await import(${JSON.stringify(heartbeat)});
      startHeartbeat({ fd: 4, beatMs: 5 });
      let turns = 0;
      const turning = setInterval(() => turns++, 5);
      setTimeout(() => { clearInterval(turning); console.log(JSON.stringify({ calls, turns })); process.exit(0); }, 200);
    });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit', 'ignore', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  (child.stdio[4] as Readable).destroy();
  child.stdin!.write('go\n');
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [exitCode] = (await once(child, 'exit')) as [number];
  t.is(exitCode, 0, out);
  const { calls, turns } = JSON.parse(out) as { calls: string[]; turns: number };
  t.deepEqual(calls, ['EPIPE'], 'one write failed with EPIPE, and none was tried after it');
  t.true(turns > 10, `the loop turned ${turns} times in 200 ms`);
});
