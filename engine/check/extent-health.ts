import { access } from 'node:fs/promises';
import type { ExtentRow, FragmentRow } from '../metadata/store.js';
import { fragmentPath } from '../pool/layout.js';
import type { Pool } from '../pool/pool.js';
import { policyOf } from '../data/extent-store.js';
import { fragmentCount, toleratedLosses } from '../redundancy/policy.js';

export type ExtentHealth = 'healthy' | 'degraded' | 'unrecoverable';

export interface LostFragment {
  slot: number;
  disk: string;
  why: string;
}
export interface ExtentAssessment {
  extent: ExtentRow;
  health: ExtentHealth;
  lost: LostFragment[];
  /** Two or more of its fragments are in one failure domain: one device failure takes them together. */
  sharedDomain: boolean;
}

/**
 * Classifies an extent from what is known without reading data: fragments on failed disks,
 * fragment files that are gone, and fragments that failed a checksum when last read.
 */
export async function assessExtent(pool: Pool, ext: ExtentRow, errors: Map<string, string>): Promise<ExtentAssessment> {
  const policy = policyOf(ext.policy);
  const frags: FragmentRow[] = pool.store.fragments(ext.eid);
  const lost: LostFragment[] = [];
  const n = fragmentCount(policy);
  const present = new Set(frags.map((f) => f.slot));
  for (let slot = 0; slot < n; slot++) if (!present.has(slot)) lost.push({ slot, disk: '-', why: 'no fragment recorded' });
  await Promise.all(
    frags.map(async (f) => {
      const disk = pool.disks.get(f.disk);
      if (!disk) return lost.push({ slot: f.slot, disk: f.disk, why: 'disk no longer in pool' });
      if (disk.health === 'failed') return lost.push({ slot: f.slot, disk: f.disk, why: 'disk failed' });
      const recorded = errors.get(`${f.eid}.${f.slot}`);
      if (recorded) return lost.push({ slot: f.slot, disk: f.disk, why: `read error: ${recorded}` });
      try {
        await access(fragmentPath(disk.path, f.eid, f.slot));
      } catch {
        lost.push({ slot: f.slot, disk: f.disk, why: 'fragment file missing' });
      }
      return undefined;
    }),
  );
  lost.sort((a, b) => a.slot - b.slot);
  const health: ExtentHealth = lost.length === 0 ? 'healthy' : lost.length <= toleratedLosses(policy) ? 'degraded' : 'unrecoverable';
  const domains = frags.map((f) => pool.disks.get(f.disk)?.domain ?? `gone:${f.disk}`);
  return { extent: ext, health, lost, sharedDomain: new Set(domains).size < domains.length };
}

/** Assesses every extent of the pool, a bounded batch at a time. */
export async function assessAll(pool: Pool, onExtent: (a: ExtentAssessment) => void): Promise<void> {
  const errors = new Map(pool.store.fragmentErrors().map((e) => [`${e.eid}.${e.slot}`, e.kind]));
  let batch: ExtentRow[] = [];
  const flush = async () => {
    const results = await Promise.all(batch.map((e) => assessExtent(pool, e, errors)));
    results.forEach(onExtent);
    batch = [];
  };
  for (const ext of pool.store.allExtents()) {
    batch.push(ext);
    if (batch.length >= 256) await flush();
  }
  await flush();
}
