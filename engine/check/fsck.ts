import { promises as fsp } from 'node:fs';
import { printableName } from '../util/byte-names.js';
import path from 'node:path';
import { DISK_DATA_DIR, fragmentPath } from '../pool/layout.js';
import type { Pool } from '../pool/pool.js';
import { policyOf } from '../data/extent-store.js';
import { fragmentCount } from '../redundancy/policy.js';
import { fragmentSize } from '../redundancy/codec.js';

export interface FsckProblem {
  kind: string;
  detail: string;
}
export interface FsckReport {
  clean: boolean;
  checked: { inodes: number; extents: number; fragments: number; fragmentFiles: number };
  problems: FsckProblem[];
  orphanFragments: number;
  reclaimed: number;
}

/**
 * Cross-checks metadata against the fragment files: dangling references, wrong sizes, missing
 * records, directory entries to nowhere, and fragment files no metadata points at (orphans).
 * With `repair`, orphans older than the grace period are deleted.
 */
export async function fsck(pool: Pool, options: { repair?: boolean; graceMs?: number } = {}): Promise<FsckReport> {
  const grace = options.graceMs ?? 10 * 60 * 1000;
  const store = pool.store;
  const problems: FsckProblem[] = [];
  const checked = { inodes: 0, extents: 0, fragments: 0, fragmentFiles: 0 };

  const ns = store.namespaceProblems();
  checked.inodes = ns.inodes;
  for (const r of ns.danglingDirents) {
    problems.push({
      kind: 'dangling-dirent',
      detail: `entry '${printableName(r.name)}' in directory ${r.parent} points at missing inode ${r.ino}`,
    });
  }
  for (const r of ns.parentlessDirents) {
    problems.push({
      kind: 'parentless-dirent',
      detail: `entry '${printableName(r.name)}' (inode ${r.ino}) is in directory ${r.parent}, which no longer exists`,
    });
  }
  for (const v of ns.rootlessVolumes) {
    problems.push({ kind: 'rootless-volume', detail: `volume ${v}'s root directory no longer exists` });
  }
  for (const ino of ns.unreachableInodes) {
    problems.push({ kind: 'unreachable-inode', detail: `inode ${ino} has links but no directory entry` });
  }
  for (const r of ns.extentsWithoutInode) {
    problems.push({ kind: 'extent-without-inode', detail: `extent ${r.idx} of missing inode ${r.ino}` });
  }

  const known = new Set<string>();
  for (const ext of store.allExtents()) {
    checked.extents++;
    const policy = policyOf(ext.policy);
    const frags = store.fragments(ext.eid);
    if (frags.length === 0) {
      // What a flush that failed after its write was acknowledged leaves (fs/file-data.ts): reads EIO.
      problems.push({
        kind: 'lost-extent',
        detail: `extent ${ext.eid} (inode ${ext.ino}, bytes ${ext.idx * pool.settings.extentSize}-${ext.idx * pool.settings.extentSize + ext.length}) was lost: the flush of its last write failed; it reads EIO until rewritten`,
      });
    } else if (frags.length !== fragmentCount(policy)) {
      problems.push({
        kind: 'fragment-count',
        detail: `extent ${ext.eid} (inode ${ext.ino}) has ${frags.length} fragments, ${ext.policy} needs ${fragmentCount(policy)}`,
      });
    }
    const expected = fragmentSize(policy, ext.encoded_length);
    await Promise.all(
      frags.map(async (f) => {
        checked.fragments++;
        known.add(`${f.disk}/${f.eid}.${f.slot}`);
        const disk = pool.disks.get(f.disk);
        if (!disk) return problems.push({ kind: 'unknown-disk', detail: `fragment ${f.eid}.${f.slot} is on unknown disk ${f.disk}` });
        if (disk.health === 'failed') return undefined;
        if (f.size !== expected)
          problems.push({ kind: 'size-record', detail: `fragment ${f.eid}.${f.slot} recorded as ${f.size} bytes, expected ${expected}` });
        if (!/^[0-9a-f]{8,16}$/.test(f.checksum))
          problems.push({ kind: 'checksum-record', detail: `fragment ${f.eid}.${f.slot} has malformed checksum '${f.checksum}'` });
        try {
          const st = await fsp.stat(fragmentPath(disk.path, f.eid, f.slot));
          if (st.size !== f.size)
            problems.push({
              kind: 'wrong-size',
              detail: `fragment ${f.eid}.${f.slot} on ${f.disk} is ${st.size} bytes, metadata says ${f.size}`,
            });
        } catch {
          problems.push({
            kind: 'dangling-fragment',
            detail: `fragment ${f.eid}.${f.slot} on ${f.disk} is referenced but its file is missing`,
          });
        }
        return undefined;
      }),
    );
  }
  for (const g of store.garbage(1_000_000)) known.add(`${g.disk}/${g.eid}.${g.slot}`);
  for (const i of store.intents()) for (const p of i.placement) known.add(`${p.disk}/${i.eid}.${p.slot}`);

  let orphanFragments = 0;
  let reclaimed = 0;
  const now = Date.now();
  for (const disk of pool.disks.all()) {
    if (disk.health === 'failed') continue;
    const root = path.join(disk.path, DISK_DATA_DIR, 'fragments');
    const subdirs = await fsp.readdir(root).catch(() => [] as string[]);
    for (const sub of subdirs) {
      const names = await fsp.readdir(path.join(root, sub)).catch(() => [] as string[]);
      for (const name of names) {
        checked.fragmentFiles++;
        if (known.has(`${disk.id}/${name}`)) continue;
        orphanFragments++;
        const file = path.join(root, sub, name);
        if (options.repair) {
          const st = await fsp.stat(file).catch(() => null);
          if (st && now - st.mtimeMs >= grace) {
            await fsp.unlink(file).catch(() => undefined);
            reclaimed++;
            continue;
          }
        }
        problems.push({ kind: 'orphan-fragment', detail: `${file} is not referenced by metadata` });
      }
    }
  }
  return { clean: problems.length === 0, checked, problems, orphanFragments, reclaimed };
}
