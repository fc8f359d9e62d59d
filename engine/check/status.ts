import { readLockOwner } from '../pool/lock.js';
import { diskCapacity, diskFree } from '../pool/disk-set.js';
import type { Pool } from '../pool/pool.js';
import { efficiency, formatPolicy } from '../redundancy/policy.js';
import type { Namespace } from '../fs/namespace.js';
import { assessAll, type ExtentHealth } from './extent-health.js';
import { lastScrub } from '../heal/scrub.js';
import { lastProbe } from '../heal/probe.js';

export interface DiskReport {
  id: string; path: string; tier: string; capacity: number; capped: boolean; used: number; free: number;
  health: string; healthReason: string; healthChangedAt: string;
  errors: { read: number; write: number; checksum: number };
  recentTransitions: { at: string; from: string | null; to: string; reason: string }[];
  lastProbe: ReturnType<typeof lastProbe>;
}

export interface DamagedRange { path: string; ino: number; start: number; end: number; health: ExtentHealth }

export interface PoolStatus {
  pool: { id: string; name: string; dir: string; extentSize: number; defaultPolicy: string; checksum: string };
  mounted: { pid: number; mountpoint: string | null } | null;
  health: 'healthy' | 'degraded' | 'critical';
  reasons: string[];
  disks: DiskReport[];
  extents: Record<ExtentHealth, number> & { total: number };
  bytesAtRisk: number;
  unrecoverable: DamagedRange[];
  degradedFiles: string[];
  capacity: { raw: number; used: number; free: number; usableFree: number };
  lastScrub: ReturnType<typeof lastScrub>;
  operation: Pool['activeOperation'];
}

export function diskReports(pool: Pool): DiskReport[] {
  return pool.disks.all().map((d) => ({
    id: d.id, path: d.path, tier: d.tier, capacity: diskCapacity(d), capped: d.cap !== null, used: d.used, free: diskFree(d),
    health: d.health, healthReason: d.healthReason, healthChangedAt: new Date(d.healthChangedAt).toISOString(),
    errors: { read: d.readErrors, write: d.writeErrors, checksum: d.checksumErrors },
    recentTransitions: pool.store.diskEvents(d.id, 5).map((e) => ({ at: new Date(e.at).toISOString(), from: e.from_state, to: e.to_state, reason: e.reason })),
    lastProbe: lastProbe(pool, d.id),
  }));
}

export async function poolStatus(pool: Pool, ns: Namespace, mountedBy: { pid: number; mountpoint: string | null } | null = null): Promise<PoolStatus> {
  await pool.disks.refreshSpace();
  const extents = { total: 0, healthy: 0, degraded: 0, unrecoverable: 0 };
  let bytesAtRisk = 0;
  const unrecoverable: DamagedRange[] = [];
  const degradedInodes = new Set<number>();
  const E = pool.settings.extentSize;
  await assessAll(pool, (a) => {
    extents.total++;
    extents[a.health]++;
    if (a.health !== 'healthy') {
      bytesAtRisk += a.extent.length;
      degradedInodes.add(a.extent.ino);
    }
    if (a.health === 'unrecoverable') {
      const start = a.extent.idx * E;
      for (const p of ns.pathsOf(a.extent.ino)) unrecoverable.push({ path: p, ino: a.extent.ino, start, end: start + a.extent.length, health: a.health });
    }
  });
  const disks = diskReports(pool);
  const reasons: string[] = [];
  for (const d of disks) if (d.health !== 'healthy') reasons.push(`disk ${d.id} (${d.path}) is ${d.health}${d.healthReason ? `: ${d.healthReason}` : ''}`);
  if (extents.degraded) reasons.push(`${extents.degraded} extent(s) degraded (redundancy reduced, data readable)`);
  if (extents.unrecoverable) {
    const files = [...new Set(unrecoverable.map((u) => u.path))];
    reasons.push(`${extents.unrecoverable} extent(s) unrecoverable in ${files.length} file(s): ${files.slice(0, 5).join(', ')}${files.length > 5 ? ', ...' : ''}`);
  }
  if (disks.length === 0) reasons.push('the pool has no disks; add some with add-disk');
  const health = extents.unrecoverable > 0 || disks.length === 0 ? 'critical' : reasons.length ? 'degraded' : 'healthy';
  const usable = pool.disks.all().filter((d) => d.health !== 'failed');
  const raw = usable.reduce((s, d) => s + diskCapacity(d), 0);
  const used = usable.reduce((s, d) => s + d.used, 0);
  const free = usable.filter((d) => d.health === 'healthy').reduce((s, d) => s + diskFree(d), 0);
  const owner = mountedBy ?? readLockOwner(pool.dir) ?? null;
  return {
    pool: { id: pool.id, name: pool.name, dir: pool.dir, extentSize: E, defaultPolicy: formatPolicy(pool.settings.defaultPolicy), checksum: pool.settings.checksum },
    mounted: owner ? { pid: owner.pid, mountpoint: owner.mountpoint } : null,
    health, reasons, disks, extents, bytesAtRisk, unrecoverable,
    degradedFiles: [...degradedInodes].flatMap((ino) => ns.pathsOf(ino)).sort(),
    capacity: { raw, used, free, usableFree: Math.floor(free * efficiency(pool.settings.defaultPolicy)) },
    lastScrub: lastScrub(pool),
    operation: pool.activeOperation,
  };
}
