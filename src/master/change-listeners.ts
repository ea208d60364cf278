// The listeners of an emitter's 'change' (open Watch streams, dashboard feeds, operations) as a set
// of their own, called from one listener of the emitter's.
import type { EventEmitter } from 'node:events';

/** Calls each listener added on every 'change' of `emitter` until it is removed. */
export class ChangeListeners {
  readonly #emitter: EventEmitter;
  readonly #listeners = new Set<() => void>();
  readonly #call = (): void => {
    for (const listener of [...this.#listeners]) listener();
  };

  constructor(emitter: EventEmitter) {
    this.#emitter = emitter;
  }

  /** Adds `listener`; the returned function removes it. */
  add(listener: () => void): () => void {
    if (this.#listeners.size === 0) this.#emitter.on('change', this.#call);
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#emitter.off('change', this.#call);
    };
  }
}
