import { poolStatus, type PoolStatus } from './status.js';
import type { FileSystem } from '../fs/filesystem.js';
import { lastScrub } from '../heal/scrub.js';
import { DISK_STATES } from '../pool/disk-health.js';
import type { Pool } from '../pool/pool.js';
import { metrics } from '../observability/metrics.js';

/** How long a computed pool status serves scrapes and health checks before it is recomputed. */
const SNAPSHOT_TTL_MS = 5000;

/**
 * A pool hosted by this process, watched for metrics, /health and diagnostics. The extent health
 * counts need a pass over the metadata, so one status serves every reader for a few seconds.
 */
export class PoolWatch {
  private snapshot: { at: number; status: PoolStatus } | null = null;
  private computing: Promise<PoolStatus> | null = null;
  private seen = { hits: 0, misses: 0, read: 0, written: 0 };
  readonly startedAt = Date.now();
  private readonly stopCollecting: () => void;

  constructor(
    readonly pool: Pool,
    readonly fs: FileSystem,
  ) {
    this.stopCollecting = metrics.onCollect(() => this.refreshGauges());
    metrics.pools.inc();
  }

  /** Drops the cached status, so the next reader sees a change at once (a disk failed, a scrub ended). */
  invalidate(): void {
    this.snapshot = null;
  }

  async status(): Promise<PoolStatus> {
    if (this.snapshot && Date.now() - this.snapshot.at < SNAPSHOT_TTL_MS) return this.snapshot.status;
    this.computing ??= poolStatus(this.pool, this.fs.ns)
      .then((status) => {
        this.snapshot = { at: Date.now(), status };
        return status;
      })
      .finally(() => {
        this.computing = null;
      });
    return this.computing;
  }

  private async refreshGauges(): Promise<void> {
    const pool = this.pool.name;
    const s = await this.status();
    for (const d of s.disks) {
      metrics.diskCapacity.set({ pool, disk: d.id, tier: d.tier }, d.capacity);
      metrics.diskUsed.set({ pool, disk: d.id, tier: d.tier }, d.used);
      for (const state of DISK_STATES) metrics.diskHealth.set({ pool, disk: d.id, state }, d.health === state ? 1 : 0);
    }
    for (const h of ['healthy', 'degraded', 'unrecoverable'] as const) metrics.extents.set({ pool, health: h }, s.extents[h]);
    metrics.bytesAtRisk.set({ pool }, s.bytesAtRisk);
    for (const state of ['healthy', 'degraded', 'critical']) metrics.poolHealth.set({ pool, state }, s.health === state ? 1 : 0);
    metrics.capacityBytes.set({ pool }, s.capacity.raw);
    metrics.usableFreeBytes.set({ pool }, s.capacity.usableFree);
    metrics.failureDomains.set({ pool }, s.failureDomains.count);
    metrics.policiesShortOfDomains.set({ pool }, s.failureDomains.short.length);
    metrics.sharedDomainExtents.set({ pool }, s.failureDomains.sharedExtents);
    metrics.diskDomain.reset();
    for (const d of s.disks) metrics.diskDomain.set({ pool, disk: d.id, domain: d.failureDomain }, 1);
    metrics.usedBytes.set({ pool }, s.capacity.used);
    const op = this.pool.activeOperation;
    const ratio = op && op.extentsTotal > 0 ? op.extentsDone / op.extentsTotal : 0;
    const rebuilding = op?.kind.startsWith('rebuild') ?? false;
    const scrubbing = op?.kind.startsWith('scrub') ?? false;
    metrics.rebuildInProgress.set({ pool }, rebuilding ? 1 : 0);
    metrics.rebuildProgress.set({ pool }, rebuilding ? ratio : 0);
    metrics.scrubInProgress.set({ pool }, scrubbing ? 1 : 0);
    metrics.scrubProgress.set({ pool }, scrubbing ? ratio : 0);
    const last = lastScrub(this.pool);
    metrics.scrubLastSuccess.set({ pool }, last ? Date.parse(last.finishedAt) / 1000 : 0);
    metrics.scrubLastIssues.set({ pool }, last?.issues ?? 0);
    // The extent cache and file data count in plain fields on the hot path; carry the increase over.
    const { cache, bytesRead, bytesWritten } = this.fs.data;
    metrics.cacheHits.inc({ pool, cache: 'extent' }, cache.hits - this.seen.hits);
    metrics.cacheMisses.inc({ pool, cache: 'extent' }, cache.misses - this.seen.misses);
    metrics.fileReadBytes.inc({ pool }, bytesRead - this.seen.read);
    metrics.fileWrittenBytes.inc({ pool }, bytesWritten - this.seen.written);
    this.seen = { hits: cache.hits, misses: cache.misses, read: bytesRead, written: bytesWritten };
  }

  close(): void {
    this.stopCollecting();
    metrics.pools.dec();
  }
}
