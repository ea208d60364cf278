// A log-linear histogram of durations in microseconds, HDR-style: exact below 128 us, then 64 buckets
// per power of two, so every value lands in a bucket at most 1/64 (1.6%) of it wide. The open-loop
// generator records one sample per request at tens of thousands of requests per second in the same
// 2 cores as the system under test: incrementing one slot of a fixed array costs less than keeping
// every sample and sorting it, and the memory stays 13 KiB whatever the duration.

/** Values are exact below this; above it each power of two is split into SUB_BUCKETS / 2 buckets. */
const SUB_BUCKETS = 128;
const HALF = SUB_BUCKETS / 2;
/** 2^31 us is 36 minutes, far beyond any timeout: larger values are recorded as this. */
const LARGEST = 2 ** 31 - 1;
/** Bucket b >= 1 holds [64 << b, 128 << b) in steps of 1 << b; the largest b is 31 - 1 - 6. */
const SLOTS = (31 - 7) * HALF + SUB_BUCKETS;

/** The bucket a value (microseconds, >= 0) falls into. */
export function bucketOf(us: number): number {
  const value = Math.min(LARGEST, Math.max(0, Math.floor(us)));
  if (value < SUB_BUCKETS) return value;
  const shift = 31 - Math.clz32(value) - 6;
  return shift * HALF + (value >>> shift);
}

/** The highest value (us) that falls into `bucket`: percentiles report it, so they never understate. */
export function bucketTop(bucket: number): number {
  if (bucket < SUB_BUCKETS) return bucket;
  const shift = Math.floor(bucket / HALF) - 1;
  const sub = bucket - shift * HALF;
  return (sub + 1) * 2 ** shift - 1;
}

export interface LatencySummaryMs {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export class Histogram {
  readonly counts = new Float64Array(SLOTS);
  count = 0;
  /** Exact extremes and sum, kept beside the buckets. */
  min = Infinity;
  max = 0;
  sum = 0;

  /** Records one duration in microseconds (negative values count as 0). */
  record(us: number): void {
    const value = us > 0 ? us : 0;
    this.counts[bucketOf(value)]! += 1;
    this.count++;
    this.sum += value;
    if (value > this.max) this.max = value;
    if (value < this.min) this.min = value;
  }

  /**
   * The smallest bucket top such that at least a fraction `q` of the samples are at or below it
   * (nearest rank), capped at the exact maximum; 0 when empty.
   */
  percentile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let bucket = 0; bucket < SLOTS; bucket++) {
      seen += this.counts[bucket]!;
      if (seen >= rank) return Math.min(bucketTop(bucket), this.max);
    }
    return this.max;
  }

  /** How many samples fall into buckets up to `us`'s own. */
  countUpTo(us: number): number {
    const last = bucketOf(us);
    let seen = 0;
    for (let bucket = 0; bucket <= last; bucket++) seen += this.counts[bucket]!;
    return seen;
  }

  /** p50, p90, p99, p99.9 and max, in milliseconds. */
  summaryMs(): LatencySummaryMs {
    const ms = (us: number) => us / 1000;
    return {
      p50: ms(this.percentile(0.5)),
      p90: ms(this.percentile(0.9)),
      p99: ms(this.percentile(0.99)),
      p999: ms(this.percentile(0.999)),
      max: ms(this.max),
    };
  }
}
