// A per-source budget of wrong control tokens: what slows a brute force of the TCP listener's token.
//
// A delay before answering a wrong token would not: a right token must be let through at once,
// so a client sending a thousand guesses at once learns which one was right from the one answer
// that came fast, whatever the wrong ones waited. What is bounded is how many calls of a source are
// *checked*: each source may present WRONG_TOKEN_BURST wrong tokens, and one more every
// WRONG_TOKEN_REFILL_MS; while its budget is spent its calls are refused unchecked
// (RESOURCE_EXHAUSTED, saying when to try again). A source that never presents a wrong token spends
// nothing, so its calls are never refused or delayed; one sharing an address with a brute force
// (a NAT, or every local user on 127.0.0.1) is refused with it while it lasts.

import { sourceOf } from './guard.js';

/** Wrong tokens a source may present at once before it is slowed down (a client with a stale token retrying, a typo or two). */
export const WRONG_TOKEN_BURST = 20;
/** After the burst, one more wrong token a source may present per this long (86,400 guesses a day). */
export const WRONG_TOKEN_REFILL_MS = 1_000;
/**
 * Sources remembered at once; past it the one remembered longest is forgotten (the table stays small
 * under any flood). A forgotten source comes back with a whole budget, so a guesser with more sources
 * than this (an IPv6 /48 holds many /64s) is slowed less: the budget only buys time, the defence is a
 * token too long to guess (a short one is warned of at start).
 */
export const MAX_SOURCES = 4096;

export interface WrongTokenLimits {
  burst: number;
  refillMs: number;
  maxSources: number;
  /** The clock, in ms (tests pass their own). */
  now: () => number;
}

interface Budget {
  /** Wrong tokens the source may still present (fractional while it refills). */
  left: number;
  /** When `left` was counted. */
  at: number;
}

export class WrongTokenBudget {
  readonly #limits: WrongTokenLimits;
  /** Sources that presented a wrong token and have not refilled since, least recently refused first. */
  readonly #sources = new Map<string, Budget>();

  constructor(limits: Partial<WrongTokenLimits> = {}) {
    this.#limits = { burst: WRONG_TOKEN_BURST, refillMs: WRONG_TOKEN_REFILL_MS, maxSources: MAX_SOURCES, now: Date.now, ...limits };
  }

  /** Sources remembered now. */
  get size(): number {
    return this.#sources.size;
  }

  /**
   * What a call from `address` counts against (its source: sourceOf), and the whole seconds before
   * its token may be checked (0: now): the control plane's and the dashboard's check alike.
   */
  gate(address: string | undefined): { source: string; retryAfterS: number } {
    const source = sourceOf(address ?? 'unknown');
    return { source, retryAfterS: Math.ceil(this.waitMs(source) / 1000) };
  }

  /** How long before a call from `source` may be checked; 0: now. */
  waitMs(source: string): number {
    const budget = this.#refilled(source);
    if (budget === undefined || budget.left >= 1) return 0;
    return Math.ceil((1 - budget.left) * this.#limits.refillMs);
  }

  /** A call from `source` presented a wrong token: one less. (One with none guesses nothing.) */
  spend(source: string): void {
    const budget = this.#refilled(source) ?? { left: this.#limits.burst, at: this.#limits.now() };
    budget.left = Math.max(0, budget.left - 1);
    // Last in the map's order: the least recently refused is forgotten first.
    this.#sources.delete(source);
    this.#sources.set(source, budget);
    if (this.#sources.size > this.#limits.maxSources) this.#sources.delete(this.#sources.keys().next().value!);
  }

  /** `source`'s budget counted up to now; undefined (and forgotten) once it is whole again. */
  #refilled(source: string): Budget | undefined {
    const budget = this.#sources.get(source);
    if (budget === undefined) return undefined;
    const now = this.#limits.now();
    budget.left = Math.min(this.#limits.burst, budget.left + Math.max(0, now - budget.at) / this.#limits.refillMs);
    budget.at = now;
    if (budget.left < this.#limits.burst) return budget;
    this.#sources.delete(source);
    return undefined;
  }
}
