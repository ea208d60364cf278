// The master's LoopWatch on a heartbeat stream, without a worker: a PassThrough stands in for the
// pipe. Silence past each level gives its event once per episode, a beat ends the episode, and
// while beats come nothing is reported (the watch has no poll of its own to get wrong).
import test from 'ava';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { checks } from '../../src/master/loop-checks.js';
import { LoopWatch } from '../../src/master/loop-watch.js';
import { waitFor } from '../helpers/cluster.js';

function watched(options: { stallMs: number; thresholds: number[] }) {
  const pipe = new PassThrough();
  const watch = new LoopWatch(pipe, options);
  const events: string[] = [];
  watch.on('stall', () => events.push('stall'));
  watch.on('resume', () => events.push('resume'));
  watch.on('silent', (threshold: number, episode: number) => events.push(`silent ${threshold} #${episode}`));
  watch.on('end', (episode: number) => events.push(`end #${episode}`));
  // A beat as the worker writes it: its time on the monotonic clock, in ns.
  const beat = (): void => {
    const stamp = Buffer.alloc(8);
    stamp.writeBigUInt64LE(process.hrtime.bigint());
    pipe.write(stamp);
  };
  return { pipe, watch, events, beat };
}

/**
 * A child that runs `body` with `beat()` at hand, writing a beat on fd 3, a real pipe to this process
 * (`child.stdio[3]`), as a worker writes its heartbeat; its stdout is a pipe when `stdout` is set.
 */
function beatingChild(body: string, { stdout = false } = {}) {
  const prelude = `const beat = () => { const b = Buffer.alloc(8); b.writeBigUInt64LE(process.hrtime.bigint()); require('fs').writeSync(3, b); };`;
  return spawn(process.execPath, ['-e', `${prelude}\n${body}`], { stdio: ['ignore', stdout ? 'pipe' : 'ignore', 'inherit', 'pipe'] });
}

test('steady beats: no event at all', async (t) => {
  const { watch, events, beat } = watched({ stallMs: 60, thresholds: [40, 500] });
  t.teardown(() => watch.close());
  // 40 beats 10 ms apart: ten times the first level, with a beat always well inside it.
  await new Promise<void>((resolve) => {
    let beats = 0;
    const timer = setInterval(() => {
      beat();
      if (++beats === 40) {
        clearInterval(timer);
        resolve();
      }
    }, 10);
  });
  t.true(watch.silentMs < 40);
  t.deepEqual(events, []);
});

test('a silence passes each level once, in order; the next beat ends the episode; the next silence is a new one', async (t) => {
  const { watch, events, beat } = watched({ stallMs: 60, thresholds: [40, 120] });
  t.teardown(() => watch.close());
  // Listening before the beat: on a starved machine one judgement can pass several levels at once.
  const silent = (threshold: number, episode: number): Promise<number> =>
    new Promise((resolve) => {
      const listener = (passed: number, at: number): void => {
        if (passed !== threshold || at !== episode) return;
        watch.off('silent', listener);
        resolve(watch.silentMs);
      };
      watch.on('silent', listener);
    });
  const first = silent(40, 0);
  const last = silent(120, 0);
  beat();
  t.true((await first) >= 40);
  t.true((await last) >= 120);
  t.true(watch.current(0));
  const lasted = watch.lasted(0);
  const again = silent(40, 1);
  beat();
  t.true((await lasted) >= 120);
  t.false(watch.current(0));
  // Each level once; the thresholds in order (the stall may share a judgement with the first).
  t.deepEqual(events.filter((event) => event.startsWith('silent')), ['silent 40 #0', 'silent 120 #0']);
  t.is(events.filter((event) => event === 'stall').length, 1);
  t.deepEqual(events.slice(3, 5), ['end #0', 'resume']);
  // Silent again: episode 1, from the first level on (a silence counted as episode 0 again would leave this waiting).
  t.true((await again) >= 40);
});

test('a time inside a silence is placed in it even after the beat that ended it was read; a time after that beat is not', async (t) => {
  // A capture that the worker's main thread ran inside a block can reach the master after the loop's
  // next beat: its time on the worker's clock, not the order of reading, says whether it saw the block.
  const { watch, beat } = watched({ stallMs: 0, thresholds: [40] });
  t.teardown(() => watch.close());
  const now = (): number => Number(process.hrtime.bigint()) / 1e6;
  beat();
  const [, episode] = (await once(watch, 'silent')) as [number, number];
  const inside = now();
  t.true(watch.silenceAt(episode, inside)! >= 40);
  const lasted = watch.lasted(episode);
  beat();
  const silence = await lasted;
  t.false(watch.current(episode));
  const after = now();
  t.true(watch.silenceAt(episode, inside)! >= 40 && watch.silenceAt(episode, inside)! <= silence);
  t.is(watch.silenceAt(episode, after), null, 'run after the loop beat again');
  t.is(watch.silenceAt(episode - 1, inside), null, 'another episode');
  t.is(await watch.lasted(episode), silence, 'an ended episode keeps its length');
  // The next silence is its own: the old time is not in it.
  const [, next] = (await once(watch, 'silent')) as [number, number];
  t.is(watch.silenceAt(next, inside), null);
  t.true(watch.silenceAt(next, now())! >= 40);
});

test('a worker whose heartbeat never started is not judged; close stops everything', async (t) => {
  const { watch, events, pipe } = watched({ stallMs: 20, thresholds: [30] });
  // A watch with the same levels that did get a beat: once it has passed both, the silent one has had
  // as long and said nothing.
  const other = watched({ stallMs: 20, thresholds: [30] });
  t.teardown(() => other.watch.close());
  other.beat();
  await once(other.watch, 'silent');
  t.deepEqual(other.events, ['stall', 'silent 30 #0']);
  t.deepEqual(events, []);
  const closed = once(watch, 'close');
  watch.close();
  await closed;
  t.true(watch.closed);
  t.true(pipe.destroyed, 'the pipe goes with the watch');
});

test('a real pipe whose reads are held is closed with the watch (no fd left behind by an exited worker)', async (t) => {
  // One beat, then exit: the watch holds reads after the beat, so the pipe's end is never read.
  const child = beatingChild('beat();');
  const pipe = child.stdio[3] as Readable;
  const watch = new LoopWatch(pipe, { stallMs: 0, thresholds: [60_000] });
  t.teardown(() => watch.close());
  await once(child, 'exit');
  const pipeClosed = once(pipe, 'close');
  watch.close();
  await pipeClosed;
  t.true(pipe.destroyed);
});

test('a real pipe is read in place when a check is due: beats are judged without the stream, a block is reported, the end of the pipe closes the watch', async (t) => {
  // 60 beats 10 ms apart, a 250 ms block, three beats, then exit.
  const child = beatingChild(`
    let n = 0;
    const timer = setInterval(() => {
      beat();
      if (++n < 60) return;
      clearInterval(timer);
      const end = Date.now() + 250;
      while (Date.now() < end);
      for (let i = 0; i < 3; i++) beat();
    }, 10);`);
  const pipe = child.stdio[3] as Readable;
  // Chunks the stream itself delivered: until a silence passes a level, only the first beat's.
  let chunks = 0;
  let chunksBeforeSilent: number | null = null;
  pipe.on('data', () => chunks++);
  const watch = new LoopWatch(pipe, { stallMs: 0, thresholds: [100] });
  // The watch's timers are unref'd (a master has its own reasons to live): this test's are these.
  const alive = setInterval(() => {}, 1000);
  t.teardown(() => {
    clearInterval(alive);
    watch.close();
  });
  const lasted: number[] = [];
  watch.on('silent', (_threshold: number, episode: number) => {
    chunksBeforeSilent ??= chunks;
    void watch.lasted(episode).then((ms) => lasted.push(ms));
  });
  await once(watch, 'close');
  t.true(lasted.some((ms) => ms >= 240), `silences: ${lasted.join(', ')} ms`);
  t.not(chunksBeforeSilent, null);
  if (process.platform === 'linux') t.true(chunksBeforeSilent! <= 2, `${chunksBeforeSilent} chunks read by the stream before the first silence`);
});

test('a silence short of the first level is read as beats come: silentMs drops as soon as the loop turns again', async (t) => {
  // Only one level, far off: the pipe is checked every 250 ms (HOLD_MS); a 400 ms block is seen at a
  // check, and from then on the next beat must be taken when it comes, not at the level.
  const child = beatingChild(
    `
    let n = 0;
    setInterval(() => {
      beat();
      n++;
      if (n === 10) { const end = Date.now() + 400; while (Date.now() < end); }
      if (n === 20) console.log('resumed');
    }, 10);`,
    { stdout: true },
  );
  t.teardown(() => child.kill('SIGKILL'));
  const watch = new LoopWatch(child.stdio[3] as Readable, { stallMs: 0, thresholds: [30_000] });
  t.teardown(() => watch.close());
  const resumed = new Promise<void>((resolve) => child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('resumed') && resolve()));
  await resumed;
  await waitFor(() => watch.silentMs < 250, { what: `silentMs back under 250 ms (${watch.silentMs})` });
  t.pass();
});

/** A loop that beats every 25 ms. */
const STEADY = 'setInterval(beat, 25);';

/** A beating child per body, each watched as a worker is by default (one level, 100 ms), all gone with the test. */
function watchedChildren(t: { teardown(fn: () => void): void }, bodies: string[]): LoopWatch[] {
  const children = bodies.map((body) => beatingChild(body));
  const watches = children.map((child) => new LoopWatch(child.stdio[3] as Readable, { stallMs: 0, thresholds: [100] }));
  // The watch's timers are unref'd: this keeps the test's process waiting for them.
  const alive = setInterval(() => {}, 1000);
  t.teardown(() => {
    clearInterval(alive);
    for (const watch of watches) watch.close();
    for (const child of children) child.kill('SIGKILL');
  });
  return watches;
}

// Serial: the checks of every watch in this process share one timer, and this test counts its wake-ups.
test.serial('the checks of many workers share the wake-ups: six beating pipes, several checks per wake-up', async (t) => {
  const watches = watchedChildren(t, Array.from({ length: 6 }, () => STEADY));
  await waitFor(() => watches.every((watch) => watch.silentMs > 0), { what: 'a beat from each child' });
  const fired = checks.fired;
  const ran = checks.ran;
  // Each watch is checked about once per 100 ms; a timer each woke the master once per check.
  await waitFor(() => checks.ran - ran >= 120, { what: '120 checks' });
  const wakeUps = checks.fired - fired;
  t.true(wakeUps * 2 <= checks.ran - ran, `${checks.ran - ran} checks in ${wakeUps} wake-ups`);
  t.log(`${checks.ran - ran} checks in ${wakeUps} wake-ups`);
});

test.serial('blocks among workers whose checks share the wake-ups are each reported', async (t) => {
  // Three steady loops, and one that blocks 300 ms every 20 beats, five times. A check of the blocker
  // that runs early beside the others' finds no newer beat and must still judge it when due.
  const blocker = `
    let n = 0;
    setInterval(() => {
      beat();
      if (++n % 20 === 0 && n <= 100) { const end = Date.now() + 300; while (Date.now() < end); }
    }, 25);`;
  const watches = watchedChildren(t, [blocker, STEADY, STEADY, STEADY]);
  const lasted: number[] = [];
  const [watched] = watches;
  watched!.on('silent', (_threshold: number, episode: number) => void watched!.lasted(episode).then((ms) => lasted.push(ms)));
  await waitFor(() => lasted.filter((ms) => ms >= 250).length >= 5, { timeoutMs: 30_000, what: `five silences of the blocker reported (${lasted.join(', ')} ms)` });
  t.true(lasted.filter((ms) => ms >= 250).length >= 5, `silences: ${lasted.join(', ')} ms`);
});

test('a stamp from the future (the pipe is the app to write) reads as now: the silence after it is still judged, and no timer overflows', async (t) => {
  const { pipe, watch, events } = watched({ stallMs: 60, thresholds: [40, 120] });
  t.teardown(() => watch.close());
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(warning.name);
  };
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const forged = Buffer.alloc(8);
  forged.writeBigUInt64LE(2n ** 64n - 1n);
  pipe.write(forged);
  // Read as a beat now: the silence after it passes each level, as after a real one.
  await waitFor(() => events.includes('silent 120 #0'), { what: 'the silence after the forged beat judged' });
  // Each level once, in order, and one stall: a late check (a loaded machine) may judge 40 ms and the
  // 60 ms stall at once, and then the stall comes first, as in the test of a silence above.
  t.deepEqual(events.filter((event) => event.startsWith('silent')), ['silent 40 #0', 'silent 120 #0']);
  t.is(events.filter((event) => event === 'stall').length, 1);
  t.is(events.length, 3, events.join(', '));
  t.false(warnings.includes('TimeoutOverflowWarning'), warnings.join(', '));
});
