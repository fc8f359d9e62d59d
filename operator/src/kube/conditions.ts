import type { Condition } from '../api/pool.js';

/**
 * Sets a condition the way metav1.Condition wants it: lastTransitionTime moves only when the status
 * flips; reason, message and observedGeneration always follow the latest reconcile.
 */
export function setCondition(list: Condition[] | undefined, next: Omit<Condition, 'lastTransitionTime'>, now = new Date()): Condition[] {
  const out = [...(list ?? [])];
  const i = out.findIndex((c) => c.type === next.type);
  const prev = i >= 0 ? out[i] : undefined;
  const c: Condition = {
    ...next,
    lastTransitionTime: prev && prev.status === next.status ? prev.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, 'Z'),
  };
  if (i >= 0) out[i] = c;
  else out.push(c);
  return out;
}

export function conditionOf(list: Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}
