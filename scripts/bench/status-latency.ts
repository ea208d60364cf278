// `npm run bench:status`: how long `clusterd status` takes, wall time, beside `pm2 jlist` measured the
// same way (issue 3 asks for under 300 ms). Starts a 2-worker clusterd (`start -d`) and a 2-instance
// PM2 cluster of the benchmark's app, then runs every command --runs times (default 15), interleaved,
// each with spawnSync from a process that is already warm, and prints the median, p90, min and max as
// a Markdown table. Runs with the Node that runs it: put Node 24 first on PATH to measure that.
//   --runs N       how many times each command runs
//   --no-install   do not install PM2 into .bench-cache/ (it is then left out)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { preparePm2 } from './install.js';
import { median } from './stats.js';

const root = path.resolve(import.meta.dirname, '..', '..');
const node = process.execPath;
const clusterd = path.join(root, 'bin', 'clusterd.js');
const app = path.join(root, 'scripts', 'bench', 'apps', 'server.cjs');

interface Command {
  label: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

function main(argv: string[]): number {
  let runs = 15;
  let install = true;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runs' && Number.isInteger(Number(argv[i + 1])) && Number(argv[i + 1]) > 0) runs = Number(argv[++i]);
    else if (argv[i] === '--no-install') install = false;
    else {
      console.error(`bench:status: unknown argument ${argv[i]} (usage: npm run bench:status -- [--runs N] [--no-install])`);
      return 2;
    }
  }

  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'clusterd-status-latency-'));
  const clusterdEnv = { ...process.env, CLUSTERD_RUNTIME_DIR: path.join(scratch, 'run'), BENCH_PORT: '0' };
  const pm2Env = { ...process.env, PM2_HOME: path.join(scratch, 'pm2'), BENCH_PORT: '0' };
  const pm2 = preparePm2({ cache: path.join(root, '.bench-cache'), install });
  const commands: Command[] = [
    { label: '`clusterd status timing`', args: [clusterd, 'status', 'timing'], env: clusterdEnv },
    { label: '`clusterd status timing --json`', args: [clusterd, 'status', 'timing', '--json'], env: clusterdEnv },
    { label: '`node -e 0`', args: ['-e', '0'], env: process.env },
  ];
  try {
    check('clusterd start -d', spawnSync(node, [clusterd, 'start', '-d', app, '-i', '2', '--name', 'timing'], { env: clusterdEnv, encoding: 'utf8' }));
    if ('bin' in pm2) {
      check('pm2 start', spawnSync(node, [pm2.bin, 'start', app, '-i', '2', '--name', 'timing'], { env: pm2Env, encoding: 'utf8' }));
      commands.splice(2, 0, { label: `\`pm2 jlist\` (PM2 ${pm2.version})`, args: [pm2.bin, 'jlist'], env: pm2Env });
    } else {
      console.error(`bench:status: PM2 left out: ${pm2.note}`);
    }

    const times = commands.map(() => [] as number[]);
    for (let run = 0; run < runs; run++) {
      commands.forEach((command, index) => {
        const started = performance.now();
        check(command.label, spawnSync(node, command.args, { env: command.env, encoding: 'utf8' }));
        times[index]!.push(performance.now() - started);
      });
    }

    const ms = (value: number) => `${Math.round(value)} ms`;
    console.log(`Node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} cores, ${runs} runs each, interleaved\n`);
    console.log('| command | median | p90 | min | max |');
    console.log('|---|---:|---:|---:|---:|');
    commands.forEach((command, index) => {
      const sorted = [...times[index]!].sort((a, b) => a - b);
      const p90 = sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.9) - 1)]!;
      console.log(`| ${command.label} | ${ms(median(sorted)!)} | ${ms(p90)} | ${ms(sorted[0]!)} | ${ms(sorted.at(-1)!)} |`);
    });
    return 0;
  } catch (error) {
    console.error(`bench:status: ${(error as Error).message}`);
    return 1;
  } finally {
    spawnSync(node, [clusterd, 'stop', 'timing'], { env: clusterdEnv, stdio: 'ignore', timeout: 30_000 });
    if ('bin' in pm2) spawnSync(node, [pm2.bin, 'kill'], { env: pm2Env, stdio: 'ignore', timeout: 30_000 });
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function check(what: string, result: ReturnType<typeof spawnSync>): void {
  if (result.error) throw new Error(`${what}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${what} exited with ${result.status}: ${String(result.stderr).trim().split('\n')[0] ?? ''}`);
}

process.exitCode = main(process.argv.slice(2));
