import type { ExtentStore, RepairWriteOptions } from '../data/extent-store.js';
import { policyOf } from '../data/extent-store.js';
import type { ExtentRow, FragmentRow } from '../metadata/store.js';
import { reconstructFragments } from '../redundancy/codec.js';
import { fragmentCount } from '../redundancy/policy.js';

/** `rewritten`: slots skipped because a concurrent write replaced the extent (the new version is whole). */
export interface RepairOutcome {
  repaired: number[];
  failed: { slot: number; error: string }[];
  rewritten: number[];
  bytesWritten: number;
}

/**
 * Writes the fragments in `bad` back: taken from `got` when it holds them (a drain moving a good
 * fragment), else rebuilt from the good ones (null = bad or unread), bit-identical to the originals,
 * so their recorded checksums stay valid.
 */
export async function repairExtent(
  extents: ExtentStore,
  ext: ExtentRow,
  frags: FragmentRow[],
  got: (Buffer | null)[],
  bad: number[],
  opts: RepairWriteOptions = {},
): Promise<RepairOutcome> {
  const out: RepairOutcome = { repaired: [], failed: [], rewritten: [], bytesWritten: 0 };
  const policy = policyOf(ext.policy);
  let rebuilt: (Buffer | null)[];
  try {
    rebuilt = bad.every((slot) => got[slot]) ? got : await reconstructFragments(policy, got, ext.encoded_length, bad);
  } catch (err) {
    for (const slot of bad) out.failed.push({ slot, error: (err as Error).message });
    return out;
  }
  const bySlot = new Map(frags.map((f) => [f.slot, f]));
  // Where each fragment is as the repairs land: a fragment placed for one slot must keep the next off its disk and domain.
  const where = new Map(frags.map((f) => [f.slot, f.disk]));
  for (const slot of bad) {
    const frag = bySlot.get(slot);
    if (!frag || slot >= fragmentCount(policy)) {
      out.failed.push({ slot, error: 'no fragment record to repair' });
      continue;
    }
    const siblings = [...where].filter(([s]) => s !== slot).map(([, disk]) => disk);
    const data = rebuilt[slot] as Buffer;
    try {
      const landed = await extents.writeRepair(ext, frag, data, siblings, opts);
      if (landed) {
        where.set(slot, landed);
        out.repaired.push(slot);
        out.bytesWritten += data.length;
      } else {
        out.rewritten.push(slot);
      }
    } catch (err) {
      out.failed.push({ slot, error: (err as Error).message });
    }
  }
  return out;
}

/** Reads every fragment of an extent (or just enough of them), verifying each. */
export async function readFragments(
  extents: ExtentStore,
  ext: ExtentRow,
  frags: FragmentRow[],
  options: { all: boolean },
): Promise<{ got: (Buffer | null)[]; problems: Map<number, string>; bytes: number }> {
  const policy = policyOf(ext.policy);
  const n = fragmentCount(policy);
  const need = policy.kind === 'replication' ? 1 : policy.data;
  const got: (Buffer | null)[] = new Array<Buffer | null>(n).fill(null);
  const problems = new Map<number, string>();
  for (let slot = 0; slot < n; slot++) if (!frags.some((f) => f.slot === slot)) problems.set(slot, 'no fragment recorded');
  let bytes = 0;
  let good = 0;
  const queue = [...frags];
  while (queue.length && (options.all || good < need)) {
    const batch = queue.splice(0, options.all ? queue.length : need - good);
    const results = await Promise.all(batch.map((f) => extents.checkFragment(ext, f)));
    results.forEach((r, i) => {
      const f = batch[i];
      if (r.data) {
        got[f.slot] = r.data;
        good++;
        bytes += f.size;
      } else {
        problems.set(f.slot, r.problem ?? 'unreadable');
      }
    });
  }
  return { got, problems, bytes };
}

export function releaseAll(extents: ExtentStore, got: (Buffer | null)[]): void {
  for (const b of got) if (b) extents.release(b);
}
