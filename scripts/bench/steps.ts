// What the rounds repeat: one step per closed-loop workload, and one per rate of an open-loop workload
// ((d) at 50, 70 and 90% of capacity is three steps). A step's key names its table in results.md and
// its entry in results.json's summary: 'a', 'b', 'c', 'd@50', 'd@70', 'd@90', 'e@50'.
import { workloads, type WorkloadId } from './workloads.js';

export interface Step {
  key: string;
  workload: WorkloadId;
  /** Open-loop steps: the share of capacity, and the rate in req/s it came to. */
  ratePct?: number;
  rate?: number;
  /** Worker count for every system in this step, when the workload fixes it ((e): 2). */
  workers?: number;
}

/** Capacity (node:cluster rr req/s on the workload it is measured on), per open-loop workload. */
export type Capacities = Partial<Record<WorkloadId, number>>;

/** The steps for `ids`: closed-loop workloads as they are, open-loop ones once per rate. */
export function stepsFor(ids: WorkloadId[], { capacities, ratesPct }: { capacities: Capacities; ratesPct: Partial<Record<WorkloadId, number[]>> }): Step[] {
  const steps: Step[] = [];
  for (const id of ids) {
    const { open } = workloads[id];
    if (!open) {
      steps.push({ key: id, workload: id });
      continue;
    }
    const capacity = capacities[id];
    if (capacity === undefined) continue;
    for (const pct of ratesPct[id] ?? open.ratesPct) {
      steps.push({ key: `${id}@${pct}`, workload: id, ratePct: pct, rate: (capacity * pct) / 100, ...(open.workers ? { workers: open.workers } : {}) });
    }
  }
  return steps;
}

/** The heading of a step's table. */
export function stepTitle(step: Step): string {
  const { title } = workloads[step.workload];
  return step.rate === undefined ? title : `${title}, at ${step.ratePct}% of capacity (${Math.round(step.rate)} req/s)`;
}

/** Steps of a results.json written before steps existed: one per workload. */
export function legacySteps(ids: WorkloadId[]): Step[] {
  return ids.map((id) => ({ key: id, workload: id }));
}
