// The capacity the open-loop workloads' rates are shares of: node:cluster rr's req/s on a closed-loop
// workload ((d): c, (e): a with 2 workers), measured at the start of the same run with the closed-loop
// generator for --duration (after the warm-up), so that the rates suit this machine on this day.
// --capacity-d / --capacity-e give a figure instead and skip the measurement.
import type { BenchOptions } from './options.js';
import { runRounds, scheduleFrom, type Entry, type RunRecord } from './runner.js';
import type { Capacities } from './steps.js';
import type { SystemSpec } from './systems.js';
import type { LoadGenerator } from './load/types.js';
import { workloads, type WorkloadId } from './workloads.js';

export interface Capacity {
  /** The open-loop workload, and the closed-loop one the capacity was measured on. */
  workload: WorkloadId;
  of: WorkloadId;
  source: 'measured' | 'given';
  rps?: number;
  workers?: number;
  /** The measurement itself (source 'measured'). */
  record?: RunRecord;
  error?: string;
}

/** Measures (or takes from the options) the capacity of every open-loop workload in `ids`. */
export async function measureCapacities({
  ids,
  options,
  reference,
  generator,
  scratch,
}: {
  ids: WorkloadId[];
  options: BenchOptions;
  /** node:cluster rr. */
  reference: SystemSpec;
  generator: LoadGenerator;
  scratch: string;
}): Promise<Capacity[]> {
  const given: Partial<Record<WorkloadId, number>> = { d: options.capacityD, e: options.capacityE };
  const results: Capacity[] = [];
  for (const id of ids) {
    const { open } = workloads[id];
    if (!open) continue;
    const base = { workload: id, of: open.capacityOf, ...(open.workers ? { workers: open.workers } : {}) };
    const rps = given[id];
    if (rps !== undefined) {
      results.push({ ...base, source: 'given', rps });
      continue;
    }
    const workers = reference.serving(open.workers ?? options.workers);
    console.error(`bench: capacity for (${id}): ${reference.label} on (${open.capacityOf}), ${workers} workers, ${generator.name}, ${options.durationS} s`);
    const entry: Entry = { id: reference.id, label: reference.label, spec: reference, workers };
    const schedule = scheduleFrom({ ...options, rounds: 1 }, { entries: [entry], steps: [{ key: `capacity-${id}`, workload: open.capacityOf, workers }], generator, scratch });
    const [record] = await runRounds(schedule, new Map());
    if (record?.ok && record.load && record.load.rps > 0) results.push({ ...base, source: 'measured', rps: record.load.rps, record });
    else results.push({ ...base, source: 'measured', ...(record ? { record } : {}), error: record?.error ?? 'no measurement' });
  }
  return results;
}

/** The capacities as a map for stepsFor(); failed measurements are left out (their steps with them). */
export function capacityMap(capacities: Capacity[]): Capacities {
  return Object.fromEntries(capacities.flatMap((capacity) => (capacity.rps === undefined ? [] : [[capacity.workload, capacity.rps]])));
}

/** One line per capacity for the results' notes. */
export function capacityNotes(capacities: Capacity[]): string[] {
  return capacities.map((capacity) => {
    const what = `(${capacity.workload})'s capacity`;
    if (capacity.error) return `${what} could not be measured (node:cluster rr on (${capacity.of}): ${capacity.error}); its steps were left out`;
    const rps = Math.round(capacity.rps ?? 0);
    if (capacity.source === 'given') return `${what}: ${rps} req/s, given on the command line`;
    const workers = capacity.workers ? `, ${capacity.workers} workers` : '';
    return `${what}: ${rps} req/s, node:cluster rr's on (${capacity.of})${workers}, measured at the start of this run`;
  });
}
