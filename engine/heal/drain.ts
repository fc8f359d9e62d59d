import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { ExtentStore } from '../data/extent-store.js';
import { policyOf } from '../data/extent-store.js';
import { domainCount, rawSpace } from '../pool/capacity.js';
import { describeDomains } from '../pool/placement.js';
import { DISK_IDENTITY, mirrorPath } from '../pool/layout.js';
import { PoolError, type Pool } from '../pool/pool.js';
import { formatPolicy, fragmentCount } from '../redundancy/policy.js';
import { formatBytes } from '../util/units.js';
import { readFragments, releaseAll, repairExtent } from './repair.js';

export interface DrainReport {
  disk: string;
  path: string;
  startedAt: string;
  finishedAt: string;
  fragments: number;
  moved: number;
  failed: number;
  bytesMoved: number;
  removed: boolean;
  failures: { eid: number; slot: number; error: string }[];
}
export interface DrainProgress {
  extentsDone: number;
  extentsTotal: number;
  bytesWritten: number;
}

/** Why the other disks could not take over this disk's fragments; empty when they can. */
export function drainProblems(pool: Pool, diskId: string): string[] {
  const problems: string[] = [];
  const others = pool.disks.writable().filter((d) => d.id !== diskId);
  const frags = pool.store.fragmentsOnDisk(diskId);
  const bytes = frags.reduce((s, f) => s + f.size, 0);
  // Directories of one filesystem share its free space: counted once.
  const free = rawSpace(others).free;
  const shared = pool.config.reliability.allow_shared_failure_domains;
  const domains = domainCount(others);
  if (bytes > free) problems.push(`the other healthy disks have ${formatBytes(free)} free, the disk holds ${formatBytes(bytes)}`);
  const widths = new Map<string, number>();
  for (const f of frags) {
    const ext = pool.store.extentByEid(f.eid);
    if (ext) widths.set(ext.policy, fragmentCount(policyOf(ext.policy)));
  }
  for (const [policy, width] of widths) {
    if (width > others.length)
      problems.push(`${formatPolicy(policyOf(policy))} needs ${width} distinct disks; only ${others.length} healthy disk(s) would remain`);
    else if (width > domains && !shared)
      problems.push(
        `${formatPolicy(policyOf(policy))} needs ${width} failure domains; the remaining healthy disks are in ${domains} (${describeDomains(others)})`,
      );
  }
  return problems;
}

/**
 * Drains a disk and removes it from the pool: every fragment on it is copied to another healthy
 * disk (rebuilt from the others if it does not read back), the copy is verified, and only then is
 * the old copy released. Refuses before changing anything when the other disks cannot take it all.
 */
export async function removeDisk(
  pool: Pool,
  extents: ExtentStore,
  diskId: string,
  opts: { onProgress?: (p: DrainProgress) => void } = {},
): Promise<DrainReport> {
  const disk = pool.disks.get(diskId);
  if (!disk) throw new PoolError(`no disk ${diskId}`);
  const problems = drainProblems(pool, diskId);
  if (problems.length) throw new PoolError(`cannot remove ${diskId} (${disk.path}): ${problems.join('; ')}. Nothing was changed.`);
  const report: DrainReport = {
    disk: diskId,
    path: disk.path,
    startedAt: new Date().toISOString(),
    finishedAt: '',
    fragments: 0,
    moved: 0,
    failed: 0,
    bytesMoved: 0,
    removed: false,
    failures: [],
  };
  if (disk.health !== 'failed') pool.setDiskHealth(diskId, 'draining', 'remove-disk: moving its fragments to other disks');
  const frags = pool.store.fragmentsOnDisk(diskId);
  report.fragments = frags.length;
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < frags.length) {
      const frag = frags[next++];
      const ext = pool.store.extentByEid(frag.eid);
      if (ext) {
        const all = pool.store.fragments(ext.eid);
        const current = all.find((f) => f.slot === frag.slot);
        if (current && current.disk === diskId) {
          // Prefer the fragment itself; rebuild it from the others when it does not verify.
          const own = await extents.checkFragment(ext, current);
          let got: (Buffer | null)[];
          if (own.data) {
            got = new Array<Buffer | null>(fragmentCount(policyOf(ext.policy))).fill(null);
            got[frag.slot] = own.data;
          } else {
            got = (
              await readFragments(
                extents,
                ext,
                all.filter((f) => f.slot !== frag.slot),
                { all: false },
              )
            ).got;
          }
          const outcome = await repairExtent(extents, ext, all, got, [frag.slot], { relocate: true });
          releaseAll(extents, got);
          report.moved += outcome.repaired.length;
          report.bytesMoved += outcome.bytesWritten;
          for (const f of outcome.failed) {
            report.failed++;
            report.failures.push({ eid: frag.eid, slot: frag.slot, error: f.error });
          }
        }
      }
      done++;
      opts.onProgress?.({ extentsDone: done, extentsTotal: frags.length, bytesWritten: report.bytesMoved });
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  await pool.reapGarbage();
  if (report.failed === 0 && pool.store.fragmentsOnDisk(diskId).length === 0) {
    pool.store.deleteDisk(diskId);
    pool.disks.reload();
    await rm(path.join(disk.path, DISK_IDENTITY), { force: true }).catch(() => undefined);
    await rm(mirrorPath(disk.path), { force: true }).catch(() => undefined);
    await pool.afterDiskSetChange();
    report.removed = true;
  }
  report.finishedAt = new Date().toISOString();
  return report;
}
