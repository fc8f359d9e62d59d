import { readLockOwner } from '../pool/lock.js';
import { printableName } from '../util/byte-names.js';
import { diskCapacity, diskFree, type Disk } from '../pool/disk-set.js';
import type { Pool } from '../pool/pool.js';
import { formatPolicy, fragmentCount, parsePolicy } from '../redundancy/policy.js';
import { domainCount, rawSpace, usableSpace } from '../pool/capacity.js';
import { domainLabel } from '../pool/failure-domain.js';
import type { Namespace } from '../fs/namespace.js';
import { assessAll, type ExtentHealth } from '../check/extent-health.js';
import { lastScrub } from '../heal/scrub.js';
import { lastProbe } from '../heal/probe.js';
import { lastUnmount, type UnmountRecord } from '../pool/unmount-record.js';
import { poolMountAt, readMounts } from '../util/mountinfo.js';

export interface DiskReport {
  id: string;
  path: string;
  tier: string;
  capacity: number;
  capped: boolean;
  used: number;
  free: number;
  /** Its failure domain, whether the administrator named it, the devices found under it, and why that may not be the whole truth. */
  failureDomain: string;
  domainNamed: boolean;
  device: string;
  deviceWarning: string | null;
  health: string;
  healthReason: string;
  healthChangedAt: string;
  errors: { read: number; write: number; checksum: number };
  recentTransitions: { at: string; from: string | null; to: string; reason: string }[];
  lastProbe: ReturnType<typeof lastProbe>;
}

export interface DamagedRange {
  path: string;
  ino: number;
  start: number;
  end: number;
  health: ExtentHealth;
}

export interface PoolStatus {
  pool: { id: string; name: string; dir: string; extentSize: number; defaultPolicy: string; checksum: string };
  /**
   * The process serving the pool and where its mount is (mountpoint null: served without a mount).
   * Null when no process serves it, and when the mount is no longer in /proc/self/mountinfo.
   */
  mounted: { pid: number; mountpoint: string | null } | null;
  /**
   * Set while the process that owns the pool has lost its mount: removed from outside (umount,
   * fusermount -u). It serves what still holds the mount's connection (open files, bind mounts of
   * volumes) and exits once nothing does.
   */
  mountGone: { pid: number; mountpoint: string } | null;
  /** How the last mount of the pool ended (null when none has, or the pool's version did not record it). */
  lastUnmount: UnmountRecord | null;
  health: 'healthy' | 'degraded' | 'critical';
  reasons: string[];
  disks: DiskReport[];
  extents: Record<ExtentHealth, number> & { total: number };
  bytesAtRisk: number;
  unrecoverable: DamagedRange[];
  degradedFiles: string[];
  /** Raw bytes each filesystem counted once; usable bytes under the default policy, fragments spread over domains. */
  capacity: { raw: number; used: number; free: number; usableFree: number };
  failureDomains: FailureDomainReport;
  lastScrub: ReturnType<typeof lastScrub>;
  operation: Pool['activeOperation'];
}

/** The failure domains of a pool, and what they mean for its redundancy. */
export interface FailureDomainReport {
  /** Domains of the disks that take new data. */
  count: number;
  domains: { name: string; disks: string[] }[];
  allowShared: boolean;
  /**
   * Policies in use that need more domains than there are: with shared domains allowed their
   * redundancy is illusory, else their writes fail.
   */
  short: { policy: string; needs: number }[];
  /** Extents with two fragments or more in one domain. */
  sharedExtents: number;
}

/** Policies in use: the pool's default, and those of top-level directories (volumes among them). */
function policiesInUse(pool: Pool): string[] {
  return [...new Set([formatPolicy(pool.settings.defaultPolicy), ...pool.store.topLevelPolicies()])];
}

/** `sharedExtents`: counted by the caller, which assesses every extent anyway (see poolStatus). */
export function failureDomainReport(pool: Pool, sharedExtents: number): FailureDomainReport {
  const writable = pool.disks.writable();
  const byDomain = new Map<string, Disk[]>();
  for (const d of pool.disks.all()) byDomain.set(d.domain, [...(byDomain.get(d.domain) ?? []), d]);
  const count = domainCount(writable);
  const short = policiesInUse(pool)
    .map((p) => ({ policy: p, needs: fragmentCount(parsePolicy(p)) }))
    .filter((p) => p.needs > count);
  return {
    count,
    domains: [...byDomain].map(([k, ds]) => ({ name: domainLabel(k), disks: ds.map((d) => d.id) })),
    allowShared: pool.config.reliability.allow_shared_failure_domains,
    short,
    sharedExtents,
  };
}

/** Why the failure domains make a pool less than healthy, in words naming disks and devices. */
function domainReasons(r: FailureDomainReport): string[] {
  const out: string[] = [];
  const together = r.domains
    .filter((d) => d.disks.length > 1)
    .map((d) => `disks ${d.disks.join(' and ')} share ${d.name}`)
    .join('; ');
  for (const s of r.short) {
    out.push(
      r.allowShared
        ? `redundancy ${s.policy} is illusory: it needs ${s.needs} failure domains and the pool has ${r.count}${together ? ` (${together})` : ''}`
        : `writes under ${s.policy} fail: it needs ${s.needs} failure domains and the pool has ${r.count}${together ? ` (${together})` : ''}`,
    );
  }
  if (r.sharedExtents)
    out.push(
      `${r.sharedExtents} extent(s) have fragments together in one failure domain (${together || 'see list-disks'}): one device failure takes several of their fragments at once`,
    );
  return out;
}

export function diskReports(pool: Pool): DiskReport[] {
  return pool.disks.all().map((d) => ({
    id: d.id,
    path: d.path,
    tier: d.tier,
    capacity: diskCapacity(d),
    capped: d.cap !== null,
    used: d.used,
    free: diskFree(d),
    failureDomain: domainLabel(d.domain),
    domainNamed: d.domainOverride !== null,
    device: d.device,
    deviceWarning: d.deviceWarning,
    health: d.health,
    healthReason: d.healthReason,
    healthChangedAt: new Date(d.healthChangedAt).toISOString(),
    errors: { read: d.readErrors, write: d.writeErrors, checksum: d.checksumErrors },
    recentTransitions: pool.store
      .diskEvents(d.id, 5)
      .map((e) => ({ at: new Date(e.at).toISOString(), from: e.from_state, to: e.to_state, reason: e.reason })),
    lastProbe: lastProbe(pool, d.id),
  }));
}

export async function poolStatus(
  pool: Pool,
  ns: Namespace,
  mountedBy: { pid: number; mountpoint: string | null } | null = null,
): Promise<PoolStatus> {
  await pool.disks.refreshSpace();
  const extents = { total: 0, healthy: 0, degraded: 0, unrecoverable: 0 };
  let bytesAtRisk = 0;
  const unrecoverable: DamagedRange[] = [];
  const degradedInodes = new Set<number>();
  const E = pool.settings.extentSize;
  let sharedExtents = 0;
  await assessAll(pool, (a) => {
    extents.total++;
    if (a.sharedDomain) sharedExtents++;
    extents[a.health]++;
    if (a.health !== 'healthy') {
      bytesAtRisk += a.extent.length;
      degradedInodes.add(a.extent.ino);
    }
    if (a.health === 'unrecoverable') {
      const start = a.extent.idx * E;
      for (const p of ns.pathsOf(a.extent.ino))
        unrecoverable.push({ path: p, ino: a.extent.ino, start, end: start + a.extent.length, health: a.health });
    }
  });
  const disks = diskReports(pool);
  const reasons: string[] = [];
  for (const d of disks)
    if (d.health !== 'healthy') reasons.push(`disk ${d.id} (${d.path}) is ${d.health}${d.healthReason ? `: ${d.healthReason}` : ''}`);
  if (extents.degraded) reasons.push(`${extents.degraded} extent(s) degraded (redundancy reduced, data readable)`);
  if (extents.unrecoverable) {
    const files = [...new Set(unrecoverable.map((u) => u.path))];
    reasons.push(
      `${extents.unrecoverable} extent(s) unrecoverable in ${files.length} file(s): ${files.slice(0, 5).map(printableName).join(', ')}${files.length > 5 ? ', ...' : ''}`,
    );
  }
  const failureDomains = failureDomainReport(pool, sharedExtents);
  reasons.push(...domainReasons(failureDomains));
  for (const d of disks) if (d.deviceWarning && d.health !== 'failed') reasons.push(`disk ${d.id} (${d.path}): ${d.deviceWarning}`);
  if (disks.length === 0) reasons.push('the pool has no disks; add some with add-disk');
  const health = extents.unrecoverable > 0 || disks.length === 0 ? 'critical' : reasons.length ? 'degraded' : 'healthy';
  const usable = pool.disks.all().filter((d) => d.health !== 'failed');
  const raw = rawSpace(usable).capacity;
  const used = usable.reduce((s, d) => s + d.used, 0);
  const free = rawSpace(usable.filter((d) => d.health === 'healthy')).free;
  const usableFree = usableSpace(pool.disks.writable(), pool.settings.defaultPolicy, failureDomains.allowShared).free;
  const owner = mountedBy ?? readLockOwner(pool.dir) ?? null;
  // The mount as the kernel shows it (never looked up: this may be the process serving it).
  const gone =
    owner?.mountpoint && !poolMountAt(await readMounts(), owner.mountpoint, `dynamicfs:${pool.name}`)
      ? { pid: owner.pid, mountpoint: owner.mountpoint }
      : null;
  return {
    pool: {
      id: pool.id,
      name: pool.name,
      dir: pool.dir,
      extentSize: E,
      defaultPolicy: formatPolicy(pool.settings.defaultPolicy),
      checksum: pool.settings.checksum,
    },
    mounted: owner && !gone ? { pid: owner.pid, mountpoint: owner.mountpoint } : null,
    mountGone: gone,
    lastUnmount: lastUnmount(pool.store),
    health,
    reasons,
    disks,
    extents,
    bytesAtRisk,
    unrecoverable,
    degradedFiles: [...degradedInodes].flatMap((ino) => ns.pathsOf(ino)).sort(),
    capacity: { raw, used, free, usableFree },
    failureDomains,
    lastScrub: lastScrub(pool),
    operation: pool.activeOperation,
  };
}
