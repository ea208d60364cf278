// Small statistics over rounds and workers.

/** The median of the finite values, or undefined when there are none. */
export function median(values: Array<number | undefined>): number | undefined {
  const sorted = values.filter((value): value is number => value !== undefined && Number.isFinite(value)).sort((x, y) => x - y);
  if (sorted.length === 0) return undefined;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** Coefficient of variation (population standard deviation / mean) of per-worker counts. */
export function coefficientOfVariation(counts: number[]): number | undefined {
  if (counts.length < 2) return undefined;
  const mean = counts.reduce((sum, count) => sum + count, 0) / counts.length;
  if (mean === 0) return undefined;
  const variance = counts.reduce((sum, count) => sum + (count - mean) ** 2, 0) / counts.length;
  return Math.sqrt(variance) / mean;
}
