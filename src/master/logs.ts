// Worker output reaches the master's own stdout/stderr as whole lines, prefixed by worker id (a line
// longer than MAX_LINE_CHARS as pieces: lines.ts).
// The master is the only writer and writes each line in one call (stdio to pipes, files and
// TTYs is synchronous on Linux), so lines are never split or interleaved.
//
// Output is a convenience; serving is not. When the reader of a stream goes away
// (`clusterd start app.js | head -1`) the next write fails with EPIPE (EBADF for a closed
// descriptor), which Node reports as an 'error' event on process.stdout: unheard, it kills the
// master and the cluster with it. So a stream that fails is dropped for good (Node has destroyed
// it) and the cluster runs on; `clusterd logs` still has the recent lines, and a follower that keeps
// up every new one. A daemon's output is its log file, which has no reader to lose.
import type { Readable } from 'node:stream';
import { followLines } from './lines.js';
import { printable } from '../errors.js';

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogLine {
  worker: number;
  pid: number;
  stream: 'stdout' | 'stderr';
  message: string;
}

/**
 * A stream to write to; one with on() (an EventEmitter, as process.stdout) is watched for errors, and
 * one with writableLength for a reader that does not keep up.
 */
export interface OutputStream {
  write(chunk: string): unknown;
  on?(event: 'error', listener: (error: NodeJS.ErrnoException) => void): unknown;
  once?(event: 'drain', listener: () => void): unknown;
  readonly writableLength?: number;
}

/**
 * What a stream may hold unwritten before lines for it are dropped. Node writes to a pipe without
 * blocking and queues what the pipe does not take: a reader that stops reading (a stalled log
 * shipper, a paused pager) made the master hold everything the app wrote after it, until the
 * out-of-memory killer took master and cluster (170 MB of lines: master RSS 74 -> 344 MB). Past this,
 * lines are counted, not queued; once the reader has caught up, one line says how many it missed.
 * `clusterd logs` and its ring are fed whatever happens here.
 */
export const MAX_UNWRITTEN_BYTES = 8 * 1024 * 1024;

export interface LogOutput {
  stdout: OutputStream;
  stderr: OutputStream;
}

type StreamName = keyof LogOutput;

/** How many of a worker's last stderr lines are kept to explain a failed boot (Node's report of an unhandled 'error' event runs to 30). */
const TAIL_LINES = 50;

/**
 * A worker's last TAIL_LINES stderr lines, each with when the master read it: a line is evidence of
 * why the worker died only if it came shortly before (exit-report.ts exitOutput).
 */
export class OutputTail {
  readonly #lines: string[] = [];
  readonly #times: number[] = [];

  push(line: string, time = Date.now()): void {
    this.#lines.push(clipLine(line));
    this.#times.push(time);
    if (this.#lines.length > TAIL_LINES) {
      this.#lines.shift();
      this.#times.shift();
    }
  }

  /** The lines kept, oldest first. */
  lines(): string[] {
    return [...this.#lines];
  }

  /** The lines read at `time` or later, oldest first. */
  since(time: number): string[] {
    const from = this.#times.findIndex((at) => at >= time);
    return from === -1 ? [] : this.#lines.slice(from);
  }
}

/** A line the master added to a worker's stderr tail: `(clusterd: not ready after 3000 ms; see --listen-timeout)`. */
export function isMasterNote(line: string): boolean {
  return line.startsWith('(clusterd:');
}

/** How many recent worker lines the master keeps for `clusterd logs`. */
export const RECENT_LINES = 1000;

export type TimedLogLine = LogLine & { time: string };

/** The longest line kept whole for `clusterd logs` and a failed boot's explanation (output has it all). */
export const KEPT_LINE_CHARS = 16 * 1024;

/** A line as kept: past KEPT_LINE_CHARS, its start and how much was left out. */
export function clipLine(line: string): string {
  return line.length <= KEPT_LINE_CHARS ? line : `${line.slice(0, KEPT_LINE_CHARS)}... [${line.length - KEPT_LINE_CHARS} more characters]`;
}

/** A log line as kept (its message clipped); the same object when it is short enough. */
export function keptLine<T extends { message: string }>(line: T): T {
  return line.message.length > KEPT_LINE_CHARS ? { ...line, message: clipLine(line.message) } : line;
}

/**
 * A master event's message for a text log: what it quotes (a client's scale spec, an app's function
 * name) cannot send escape codes to the operator's terminal, nor forge a line of its own. A message
 * of several lines (the watchdog's stack) keeps them, each after the first indented, so none can
 * pass for a worker's line or another event.
 */
export function textLines(message: string): string {
  return message
    .split('\n')
    .map((line, index) => (index === 0 || /^\s/.test(line) ? printable(line) : `    ${printable(line)}`))
    .join('\n');
}

/**
 * An event's data. One about a worker names it and its pid (null where no one process is meant, as a
 * restart, whose process changes under it): in JSON they are the line's own `worker` and `pid`, as
 * on the worker's lines. One about none has neither: its line has `worker: null` and the master's
 * pid (another process's goes by another name).
 */
export type EventData = Record<string, unknown> & ({ worker?: undefined; pid?: undefined } | { worker: number; pid: number | null });

/** One of the master's own events, as event() was given it. */
export interface MasterEvent {
  /** Epoch ms. */
  time: number;
  event: string;
  message: string;
  data: Record<string, unknown>;
  level: 'info' | 'warn' | 'error';
}

export class LogSink {
  readonly #format: LogFormat;
  readonly #out: LogOutput;
  /** Streams that failed (EPIPE, EBADF): nothing more is written to them. */
  readonly #lost = new Set<StreamName>();
  /** Lines dropped per stream since its reader fell MAX_UNWRITTEN_BYTES behind (absent: none). */
  readonly #dropped = new Map<StreamName, number>();
  readonly #listeners = new Set<(line: TimedLogLine) => void>();
  readonly #eventListeners = new Set<(event: MasterEvent) => void>();
  // A ring buffer: #recent[#next] is the oldest line once it has wrapped.
  readonly #recent: TimedLogLine[] = [];
  #next = 0;
  /** The events eventOnce() has written. */
  readonly #said = new Set<string>();

  /** Text lines start with their time (a file has no terminal to say when). */
  readonly #timestamps: boolean;

  constructor({ format, output = process, timestamps = false }: { format: LogFormat; output?: LogOutput; timestamps?: boolean }) {
    this.#format = format;
    this.#out = output;
    this.#timestamps = timestamps;
    // From the start: a stream may fail before anything is written to it (its reader already gone).
    for (const name of ['stdout', 'stderr'] as const) output[name].on?.('error', (error) => this.#onOutputError(name, error));
  }

  get format(): LogFormat {
    return this.#format;
  }

  /** Whether a stream was dropped after an error (EPIPE: its reader is gone). */
  lost(name: StreamName): boolean {
    return this.#lost.has(name);
  }

  /**
   * Follows one stream of a worker; resolves when it ends (every line written). `intercept` may claim a
   * line for the master itself (the worker's inspector notices): it is then neither logged nor kept.
   */
  follow(stream: Readable, source: Omit<LogLine, 'message'>, tail?: OutputTail, intercept?: (line: string) => boolean): Promise<void> {
    return followLines(stream, (message) => {
      if (intercept?.(message)) return;
      tail?.push(message);
      this.line({ ...source, message });
    });
  }

  /** Writes one worker line. */
  line(line: LogLine): void {
    const time = new Date().toISOString();
    const timed: TimedLogLine = { time, ...line };
    // The ring holds RECENT_LINES: each clipped, so that it stays a few MiB whatever the app writes.
    const kept = keptLine(timed);
    if (this.#recent.length < RECENT_LINES) this.#recent.push(kept);
    else this.#recent[this.#next] = kept;
    this.#next = (this.#next + 1) % RECENT_LINES;
    for (const listener of this.#listeners) listener(timed);
    if (this.#format === 'json') {
      this.#write('stdout', JSON.stringify({ time, worker: line.worker, pid: line.pid, stream: line.stream, message: line.message }) + '\n');
    } else {
      this.#write(line.stream, `${this.#stamp(time)}[w${line.worker}] ${line.message}\n`);
    }
  }

  /** event(), the first time this log is given `event` only: what the app does, said once per cluster rather than per worker. */
  eventOnce(event: string, message: string, data: EventData = {}, level: 'info' | 'warn' | 'error' = 'info'): void {
    if (this.#said.has(event)) return;
    this.#said.add(event);
    this.event(event, message, data, level);
  }

  /** Writes one of the master's own lines: an event with a human sentence and data for --log-format json. */
  event(event: string, message: string, data: EventData = {}, level: 'info' | 'warn' | 'error' = 'info'): void {
    // One clock reading: the log line and the listeners (the dashboard's markers) show the same time.
    const time = Date.now();
    for (const listener of this.#eventListeners) listener({ time, event, message, data, level });
    const iso = new Date(time).toISOString();
    this.#write(this.#format === 'json' || level === 'info' ? 'stdout' : 'stderr', this.#eventText(iso, level, event, message, data));
  }

  /**
   * One of the master's own lines as the format writes it. In JSON its own fields come first and
   * stay what they are: the data only adds to them (it overwrote them, and a line about worker 2
   * carried the master's pid).
   */
  #eventText(iso: string, level: MasterEvent['level'], event: string, message: string, data: EventData): string {
    if (this.#format !== 'json') return `${this.#stamp(iso)}clusterd: ${textLines(message)}\n`;
    const { worker = null, pid = null, ...rest } = data;
    const line: Record<string, unknown> = { time: iso, worker, pid: worker === null ? process.pid : pid, stream: 'master', level, event, message };
    for (const [key, value] of Object.entries(rest)) if (!(key in line)) line[key] = value;
    return JSON.stringify(line) + '\n';
  }

  #stamp(time: string): string {
    return this.#timestamps ? `${time} ` : '';
  }

  #write(name: StreamName, text: string): void {
    if (this.#lost.has(name)) return;
    const stream = this.#out[name];
    const dropped = this.#dropped.get(name);
    if (dropped !== undefined) {
      this.#dropped.set(name, dropped + 1);
      return;
    }
    if ((stream.writableLength ?? 0) > MAX_UNWRITTEN_BYTES && stream.once) {
      this.#dropped.set(name, 1);
      stream.once('drain', () => this.#caughtUp(name));
      return;
    }
    stream.write(text);
  }

  /** The reader took all that was queued: say, on that stream, how many lines it missed. */
  #caughtUp(name: StreamName): void {
    const dropped = this.#dropped.get(name) ?? 0;
    this.#dropped.delete(name);
    if (this.#lost.has(name)) return;
    const message = `${dropped} ${dropped === 1 ? 'line' : 'lines'} for ${name} dropped: its reader fell ${MAX_UNWRITTEN_BYTES / 1024 / 1024} MiB behind (the cluster kept serving; \`clusterd logs\` keeps the last ${RECENT_LINES} worker lines)`;
    // Written to that stream itself, whatever the format sends elsewhere: it is that reader's gap.
    this.#out[name].write(this.#eventText(new Date().toISOString(), 'warn', 'output-dropped', message, { output: name, dropped }));
  }

  /**
   * The master exits with `bytes` still queued for `name`, whose reader stopped reading (exit-flush.ts):
   * said on the other stream, since this one would only queue it too, with the lines dropped for it
   * before (past MAX_UNWRITTEN_BYTES) that its reader would have been told of once caught up.
   */
  unwrittenAtExit(name: StreamName, bytes: number): void {
    const other: StreamName = name === 'stdout' ? 'stderr' : 'stdout';
    const dropped = this.#dropped.get(name) ?? 0;
    if (bytes === 0 || this.#lost.has(name) || this.#lost.has(other)) return;
    const what = dropped > 0 ? `${dropped} ${dropped === 1 ? 'line' : 'lines'} for ${name} dropped and ${size(bytes)} queued for it` : `${size(bytes)} queued for ${name}`;
    const message = `${what} not written: its reader stopped reading, and the master exited without waiting for it`;
    this.#out[other].write(this.#eventText(new Date().toISOString(), 'warn', 'output-dropped', message, { output: name, dropped, unwrittenBytes: bytes }));
  }

  /** Drops the stream and says so once, on the other stream if it still works. */
  #onOutputError(name: StreamName, error: NodeJS.ErrnoException): void {
    if (this.#lost.has(name)) return;
    this.#lost.add(name);
    this.event('output-lost', `${name} failed (${error.code ?? error.message}): its output is dropped from now on; the cluster keeps running`, { output: name, code: error.code }, 'warn');
  }

  /** Up to RECENT_LINES most recent worker lines, oldest first. */
  recent(): TimedLogLine[] {
    return this.#recent.length < RECENT_LINES ? [...this.#recent] : [...this.#recent.slice(this.#next), ...this.#recent.slice(0, this.#next)];
  }

  /** Subscribes to the master's own events (the dashboard's markers); returns the unsubscribe. */
  onEvent(listener: (event: MasterEvent) => void): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  /** Subscribes to every worker line (the control plane's `logs -f` uses this). */
  subscribe(listener: (line: TimedLogLine) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** `512 KiB`, `8.0 MiB`. */
function size(bytes: number): string {
  return bytes < 1024 * 1024 ? `${Math.ceil(bytes / 1024)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
