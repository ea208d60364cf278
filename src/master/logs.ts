// Worker output reaches the master's own stdout/stderr as whole lines, prefixed by worker id.
// The master is the only writer and writes each line in one call (stdio to pipes, files and
// TTYs is synchronous on Linux), so lines are never split or interleaved.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogLine {
  worker: number;
  pid: number;
  stream: 'stdout' | 'stderr';
  message: string;
}

export interface LogOutput {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
}

/** How many of a worker's last stderr lines are kept to explain a failed boot. */
const TAIL_LINES = 20;

/** How many recent worker lines the master keeps for `clusterd logs`. */
export const RECENT_LINES = 1000;

export type TimedLogLine = LogLine & { time: string };

export class LogSink {
  readonly #format: LogFormat;
  readonly #out: LogOutput;
  readonly #listeners = new Set<(line: TimedLogLine) => void>();
  // A ring buffer: #recent[#next] is the oldest line once it has wrapped.
  readonly #recent: TimedLogLine[] = [];
  #next = 0;

  constructor({ format, output = process }: { format: LogFormat; output?: LogOutput }) {
    this.#format = format;
    this.#out = output;
  }

  /** Follows one stream of a worker; resolves when it ends (every line written). */
  follow(stream: Readable, source: Omit<LogLine, 'message'>, tail?: string[]): Promise<void> {
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    lines.on('line', (message) => {
      if (tail) {
        tail.push(message);
        if (tail.length > TAIL_LINES) tail.shift();
      }
      this.line({ ...source, message });
    });
    return new Promise((resolve) => lines.once('close', resolve));
  }

  /** Writes one worker line. */
  line(line: LogLine): void {
    const time = new Date().toISOString();
    const timed: TimedLogLine = { time, ...line };
    if (this.#recent.length < RECENT_LINES) this.#recent.push(timed);
    else this.#recent[this.#next] = timed;
    this.#next = (this.#next + 1) % RECENT_LINES;
    for (const listener of this.#listeners) listener(timed);
    if (this.#format === 'json') {
      this.#out.stdout.write(JSON.stringify({ time, worker: line.worker, pid: line.pid, stream: line.stream, message: line.message }) + '\n');
    } else {
      this.#out[line.stream].write(`[w${line.worker}] ${line.message}\n`);
    }
  }

  /** Writes one of the master's own lines: an event with a human sentence and data for --log-format json. */
  event(event: string, message: string, data: Record<string, unknown> = {}, level: 'info' | 'warn' | 'error' = 'info'): void {
    if (this.#format === 'json') {
      this.#out.stdout.write(
        JSON.stringify({ time: new Date().toISOString(), worker: null, pid: process.pid, stream: 'master', level, event, message, ...data }) + '\n',
      );
    } else {
      this.#out[level === 'info' ? 'stdout' : 'stderr'].write(`clusterd: ${message}\n`);
    }
  }

  /** Up to RECENT_LINES most recent worker lines, oldest first. */
  recent(): TimedLogLine[] {
    return this.#recent.length < RECENT_LINES ? [...this.#recent] : [...this.#recent.slice(this.#next), ...this.#recent.slice(0, this.#next)];
  }

  /** Subscribes to every worker line (the control plane's `logs -f` uses this). */
  subscribe(listener: (line: TimedLogLine) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
