// A full-screen terminal view for `top`: alternate screen, hidden cursor, raw keys, redraw in
// place; and the promise to leave the terminal as it found it, however the process ends.
import { writeSync } from 'node:fs';
import type { ReadStream, WriteStream } from 'node:tty';

const ENTER = '\x1b[?1049h\x1b[?25l'; // alternate screen, hide cursor
const LEAVE = '\x1b[?25h\x1b[?1049l'; // show cursor, main screen
const HOME = '\x1b[H';
const CLEAR_LINE_END = '\x1b[K';
const CLEAR_BELOW = '\x1b[J';
const CLEAR_SCREEN = '\x1b[2J';
const CTRL_C = '\x03';

export interface ScreenHandlers {
  /** q, Q or Ctrl-C (raw mode delivers Ctrl-C as a key, not as SIGINT). */
  onQuit(): void;
  onResize(): void;
  /** Any other key, as the terminal sends it (arrows come as escape sequences: `\x1b[A`). */
  onKey?(key: string): void;
}

export class Screen {
  readonly #out: WriteStream;
  readonly #input: NodeJS.ReadStream;
  readonly #handlers: ScreenHandlers;
  #active = false;
  readonly #onKey = (key: Buffer | string): void => {
    const text = key.toString();
    if (text === 'q' || text === 'Q' || text.includes(CTRL_C)) this.#handlers.onQuit();
    else this.#handlers.onKey?.(text);
  };
  /** Set by a resize: the next draw clears the whole screen, not just what it overwrites. */
  #resized = false;
  readonly #onResize = (): void => {
    this.#resized = true;
    this.#handlers.onResize();
  };
  // Synchronous: on 'exit' nothing asynchronous runs any more.
  readonly #onExit = (): void => this.#leave((text) => writeSync((this.#out as unknown as { fd?: number }).fd ?? 1, text));

  constructor(out: WriteStream, input: NodeJS.ReadStream, handlers: ScreenHandlers) {
    this.#out = out;
    this.#input = input;
    this.#handlers = handlers;
  }

  get width(): number {
    return this.#out.columns || 80;
  }

  get height(): number {
    return this.#out.rows || 24;
  }

  enter(): void {
    if (this.#active) return;
    this.#active = true;
    process.on('exit', this.#onExit);
    this.#out.on('resize', this.#onResize);
    this.#out.write(ENTER);
    if (this.#input.isTTY) {
      (this.#input as ReadStream).setRawMode(true);
      this.#input.on('data', this.#onKey);
      this.#input.resume();
    }
  }

  /** Replaces the screen's contents with `lines` (already cut to the width). */
  draw(lines: readonly string[]): void {
    if (!this.#active) return;
    const clear = this.#resized ? CLEAR_SCREEN : '';
    this.#resized = false;
    this.#out.write(`${clear}${HOME}${lines.map((line) => `${line}${CLEAR_LINE_END}`).join('\r\n')}${CLEAR_BELOW}`);
  }

  /** Gives the terminal back: cursor, main screen, cooked input. Safe to call twice. */
  restore(): void {
    this.#leave((text) => this.#out.write(text));
  }

  #leave(write: (text: string) => void): void {
    if (!this.#active) return;
    this.#active = false;
    process.off('exit', this.#onExit);
    this.#out.off('resize', this.#onResize);
    if (this.#input.isTTY) {
      this.#input.off('data', this.#onKey);
      (this.#input as ReadStream).setRawMode(false);
      this.#input.pause();
    }
    write(LEAVE);
  }
}
