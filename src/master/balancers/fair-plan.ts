// fair's decisions, as functions of the counts the workers report (fair.ts says why each is made):
// who accepts and at what limit (planAcceptors, settledCap, churn), and which workers are asked to
// come down to an even share (keepLevels, catchUpLevel).
import { LOAD_REPORT_MS, resumeAt, resumeBelowCeiling, slack, type AcceptorLoad } from '../../protocol.js';

/** What a worker is doing with its copy of the socket, as far as the master knows. */
export type AcceptorMode = 'idle' | 'accepting' | 'full' | 'paused';

/** One worker as planAcceptors() sees it. */
export interface AcceptorView {
  mode: AcceptorMode;
  connections: number;
  /** May be given connections at all: ready (or listening, without --wait-ready), not draining. */
  eligible: boolean;
  /** 0: its loop turns; STALLED: it has not turned for the stall threshold. */
  rank: number;
  /** Its loop lags (held past LAGGING_MS lately): it accepts only while no other preferred worker can. */
  lagging?: boolean;
  /** Its server's own maxConnections, which stopped it below the limit (null or absent: none did). */
  ceiling?: number | null;
}

export interface AcceptorPlan {
  /** What each worker should be doing, in the order given. */
  modes: AcceptorMode[];
  /** The limit for the workers that accept; null when only one worker is preferred. */
  limit: number | null;
  /** The shared limit, raised when every preferred worker was full. */
  cap: number;
  /** Every preferred worker is at its server's own maxConnections: they accept past it, and Node refuses. */
  overflow: boolean;
}

export { resumeAt, slack };

/**
 * How many of the master's ticks the share of keepLevels() remembers the most connections held
 * together: 5 s, Node's default keepAliveTimeout (a client idle longer loses its connection anyway).
 */
export const HELD_TICKS = Math.ceil(5_000 / LOAD_REPORT_MS);

/**
 * The level each preferred worker should come down to by ending connections after their response
 * (so that the clients reconnect to the others), or null: an even share of all of theirs plus slack,
 * for a worker that held more than that all through its last report. Fewer than two: none.
 *
 * `held`: the most they held together lately. A connection that was ended is out of every count
 * until its client sends the next request on a new one, so counting only what they hold now, the
 * share dips after every ask (A 14, B 0 while A's ended 10 reconnect: down to 9), and the worker is
 * asked again, past even, by connections still on their way (measured in CI: 5-8 more ended after
 * the pool was even).
 */
export function keepLevels(loads: ReadonlyArray<{ connections: number; low: number }>, held = 0): Array<number | null> {
  if (loads.length < 2) return loads.map(() => null);
  const share = Math.ceil(Math.max(held, totalHeld(loads)) / loads.length);
  return levelsDownTo(loads, share + slack(share));
}

/** `level` for each worker that held more than it all through its last report, else null. */
export function levelsDownTo(loads: ReadonlyArray<{ connections: number; low: number }>, level: number): Array<number | null> {
  return loads.map(({ connections, low }) => (Math.min(low, connections) > level ? level : null));
}

/**
 * When keepLevels() asks nothing but a preferred worker is far behind (even at its most, it held
 * fewer than an even share less slack): the even share, which every worker that held more all
 * through its last report is asked down to, and which the limit of all drops to meanwhile, so that
 * the ended connections reopen on the worker behind. Otherwise null.
 *
 * It starts only from a settled pool (as many held now as lately, and one over the share all
 * along), not while connections an ask ended are still on their way, and goes on (`active`) while
 * one is behind, so the limit holds until the connections ended have reopened.
 *
 * Slack above even alone left a scale-up with nothing to move: 16 on 2 workers, scale 3, stayed
 * 8/8/0 for good (8 is an even 6 plus slack). Measured from below too, the pool spreads to about
 * 6/6/4, which no rule asks to change: the share plus slack from above, less slack from below.
 */
export function catchUpLevel(loads: ReadonlyArray<{ connections: number; low: number; peak: number }>, held = 0, active = false): number | null {
  if (loads.length < 2) return null;
  const total = Math.max(held, totalHeld(loads));
  const share = Math.ceil(total / loads.length);
  const behind = loads.some(({ connections, peak }) => Math.max(connections, peak) < Math.floor(total / loads.length) - slack(share));
  const settled = totalHeld(loads) >= total && loads.some(({ connections, low }) => Math.min(low, connections) > share);
  return behind && (active || settled) ? share : null;
}

export function totalHeld(loads: ReadonlyArray<{ connections: number }>): number {
  return loads.reduce((sum, { connections }) => sum + connections, 0);
}

/**
 * How long every preferred worker must have been at its own maxConnections before they accept past
 * it (overflow, their servers refusing): a worker whose connection closes soon (a connection per
 * request) has room again before any is refused, and meanwhile new connections wait in the queue.
 * During an overflow a worker back at its own limit may still win a connection before it hears the
 * overflow is over (and its server refuses it): at 100 ms, a loaded machine's slow requests started
 * overflows that cost 1 connection of 30 made one at a time with a place free.
 */
export const OVERFLOW_AFTER_MS = 500;

/** The largest limit ever set, whatever the connection counts (a bound, not a goal). */
const MAX_CAP = 2 ** 30;

/**
 * Decides who accepts. Not eligible: idle. Eligible but of a worse health rank than the best
 * eligible worker: paused. Among the preferred: one alone accepts without a limit; several share
 * `cap`, and one that is not accepting gets a copy once it holds no more than resumeAt(cap). A
 * worker joining brings cap down to an even share plus slack. When none of them would accept, cap
 * rises by a step (and at least to an even share plus slack), so a burst fills every preferred
 * worker in turn.
 *
 * A worker stopped by its server's own maxConnections (`ceiling`, below the limit) counts as full
 * until it says `under`, and no raise helps it: the others take the connections Node would have
 * refused there. Once every preferred worker is at its own, they all accept (`overflow`), and their
 * servers refuse connections as Node's does, rather than leave them waiting in the kernel's queue.
 */
export function planAcceptors(views: readonly AcceptorView[], cap: number): AcceptorPlan {
  const eligible = views.filter((view) => view.eligible);
  // The best rank among the workers with room: one at its server's own maxConnections refuses what it
  // takes, where a worker ranked below it (its loop stalled a moment) takes it once it turns. Only
  // when none has room, the best of all, which then overflow.
  const roomy = eligible.filter((view) => !atOwnCeiling(view));
  const best = eligible.length === 0 ? 0 : Math.min(...(roomy.length > 0 ? roomy : eligible).map((view) => view.rank));
  const preferred = (view: AcceptorView) => view.eligible && view.rank === best;
  const count = eligible.filter(preferred).length;
  if (count <= 1) {
    // One worker alone accepts without a limit, and stops at its server's own maxConnections, if any:
    // there, with no other worker that has room, it accepts past it, and Node refuses, as one process does.
    const overflow = views.some((view) => preferred(view) && atOwnCeiling(view));
    return { modes: views.map((view) => (!view.eligible ? 'idle' : preferred(view) ? 'accepting' : 'paused')), limit: null, cap, overflow };
  }
  const total = views.filter(preferred).reduce((sum, view) => sum + view.connections, 0);
  const share = Math.ceil(total / count);
  // A worker joins (started, ready, replaced): the others' limit drops to an even share, so that
  // new connections go to it first rather than wherever the kernel sends them.
  if (views.some((view) => preferred(view) && view.mode === 'idle')) cap = Math.min(cap, share + slack(share));
  // The limit a worker is held to: the shared one, or its server's own maxConnections below it.
  const own = (view: AcceptorView, limit: number): number => (view.ceiling != null && view.ceiling < limit ? view.ceiling : limit);
  const resume = (view: AcceptorView, limit: number): number => (view.ceiling != null && view.ceiling < limit ? resumeBelowCeiling(view.ceiling) : resumeAt(limit));
  const decide = (limit: number): AcceptorMode[] =>
    views.map((view) => {
      if (!view.eligible) return 'idle';
      if (!preferred(view)) return 'paused';
      if (view.mode === 'accepting' && view.connections < own(view, limit)) return 'accepting';
      return view.connections <= resume(view, limit) ? 'accepting' : 'full';
    });
  // Whether raising the limit past `limit` lets any preferred worker accept (not one at its own maxConnections).
  const raises = (limit: number): boolean => views.some((view) => preferred(view) && (view.ceiling == null || view.ceiling > limit));
  let modes = decide(cap);
  // Every preferred worker at the limit: raise it a step, and a worker below the new limit takes it.
  // Not by its resume point: figured from the larger limit it can fall below what a worker holds (32
  // held, a limit of 34 resumes at 31), and then every worker stayed full and new connections waited
  // in the kernel's queue for as long as the pool kept its connections (any pool past 64 on 2 workers).
  while (!modes.includes('accepting') && cap < MAX_CAP && raises(cap)) {
    cap = Math.min(MAX_CAP, Math.max(cap + slack(cap), share + slack(share)));
    const limit = cap;
    modes = views.map((view) => (!view.eligible ? 'idle' : !preferred(view) ? 'paused' : view.connections < own(view, limit) ? 'accepting' : 'full'));
  }
  const overflow = !modes.includes('accepting');
  if (overflow) modes = views.map((view) => (!view.eligible ? 'idle' : !preferred(view) ? 'paused' : 'accepting'));
  // A lagging worker waits while one whose loop keeps time can accept; it counts in the share and
  // takes its turn at the limit like the others, so a burst of keep-alive connections still splits
  // evenly (the others stop at the limit, then it accepts).
  if (views.some((view, index) => !view.lagging && modes[index] === 'accepting')) {
    modes = modes.map((mode, index) => (views[index]!.lagging && mode === 'accepting' ? 'paused' : mode));
  }
  return { modes, limit: cap, cap, overflow };
}

/** Whether the worker holds its server's own maxConnections (it said so), and so takes no connection without refusing it. */
function atOwnCeiling(view: AcceptorView): boolean {
  return view.ceiling != null && view.connections >= view.ceiling;
}

/** What settledCap() needs of a preferred worker's last interval. */
export interface IntervalLoad {
  /** The most and fewest connections it held. */
  peak: number;
  low: number;
  /**
   * Its short-lived connections: the most, over its reports in the interval, of the swing between
   * fewest and most that were also accepted and closed within the report's own interval (churn()).
   */
  churn: number;
  /** It stopped at its limit and asked again within the interval. */
  cycled: boolean;
}

/**
 * The cap that fits what the preferred workers held over the last interval: an even share of the
 * connections each kept all along (the lows: long-lived ones, which decide fairness), plus the
 * swing of short-lived connections, all workers' together (they come and go, and any worker may
 * get all of them while the others wait for a core: a limit inside that swing only stops a worker
 * that runs while one that does not holds the queue, and evens nothing out), plus slack. Only
 * churn counts as swing: connections that arrived and stayed (a burst of keep-alive connections,
 * spread by the limit's steps) are not short-lived, nor are ones that closed long after they came,
 * and a cap raised by them mid-burst would let one worker take the rest of the burst. A worker that
 * mostly held short-lived connections and still cycled at the limit swung further than it could
 * show: its swing counts twice, so the cap clears it in an interval or two.
 */
export function settledCap(loads: readonly IntervalLoad[], cap: number): number {
  const count = Math.max(1, loads.length);
  const share = Math.ceil(loads.reduce((sum, { low }) => sum + low, 0) / count);
  const swing = loads.reduce((sum, { peak, low, churn, cycled }) => {
    const seen = Math.max(0, churn);
    return sum + (cycled && peak >= cap && low <= peak / 2 ? 2 * seen : seen);
  }, 0);
  return Math.min(MAX_CAP, share + swing + slack(share));
}

/**
 * The short-lived connections one load report shows: its swing between fewest and most, as far as
 * connections both arrived and left within its interval (a burst that stayed, or the end of
 * connections that came long before, is not churn).
 */
export function churn({ peak, low, accepted, closed }: Pick<AcceptorLoad, 'peak' | 'low' | 'accepted' | 'closed'>): number {
  return Math.max(0, Math.min(peak - low, accepted, closed));
}
