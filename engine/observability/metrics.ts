import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from './hot-metrics.js';

/** Bounded label sets: pools and disks of this node, FUSE operation names, a fixed list of kinds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The process's one registry and every metric the engine keeps. */
export class EngineMetrics {
  readonly registry = new Registry();
  private refreshers: (() => Promise<void>)[] = [];
  readonly pools = new Gauge({ name: 'dynamicfs_pools', help: 'Pools this process hosts.', registers: [this.registry] });

  // Recorded on every fragment read and write: the hot-path kind (see hot-metrics.ts).
  readonly diskReads = new HotCounter('dynamicfs_disk_reads_total', 'Fragment reads from a disk.', ['pool', 'disk'], this.registry);
  readonly diskWrites = new HotCounter('dynamicfs_disk_writes_total', 'Fragment writes to a disk.', ['pool', 'disk'], this.registry);
  readonly diskReadBytes = new HotCounter(
    'dynamicfs_disk_read_bytes_total',
    'Fragment bytes read from a disk.',
    ['pool', 'disk'],
    this.registry,
  );
  readonly diskWrittenBytes = new HotCounter(
    'dynamicfs_disk_written_bytes_total',
    'Fragment bytes written to a disk.',
    ['pool', 'disk'],
    this.registry,
  );
  readonly diskErrors = this.counter(
    'dynamicfs_disk_errors_total',
    'I/O errors charged to a disk, by kind (read, write, checksum, readonly, slow).',
    ['pool', 'disk', 'kind'],
  );
  readonly diskReadSeconds = new HotHistogram(
    'dynamicfs_disk_read_duration_seconds',
    'Fragment read latency (read and checksum).',
    ['pool', 'disk'],
    LATENCY_BUCKETS,
    this.registry,
  );
  readonly diskWriteSeconds = new HotHistogram(
    'dynamicfs_disk_write_duration_seconds',
    'Fragment write latency.',
    ['pool', 'disk'],
    LATENCY_BUCKETS,
    this.registry,
  );

  readonly fileReadBytes = this.counter('dynamicfs_read_bytes_total', 'Bytes read by users of a mounted pool.', ['pool']);
  readonly fileWrittenBytes = this.counter('dynamicfs_written_bytes_total', 'Bytes written by users of a mounted pool.', ['pool']);
  // Recorded on every FUSE request: the hot-path kind (see hot-metrics.ts).
  readonly readSeconds = new HotHistogram(
    'dynamicfs_read_duration_seconds',
    'Latency of FUSE reads.',
    ['pool'],
    LATENCY_BUCKETS,
    this.registry,
  );
  readonly writeSeconds = new HotHistogram(
    'dynamicfs_write_duration_seconds',
    'Latency of FUSE writes.',
    ['pool'],
    LATENCY_BUCKETS,
    this.registry,
  );
  readonly fuseOps = new HotCounter(
    'dynamicfs_fuse_operations_total',
    'FUSE operations by operation and result (ok or the errno name).',
    ['pool', 'operation', 'result'],
    this.registry,
  );
  readonly fuseSeconds = new HotHistogram(
    'dynamicfs_fuse_operation_duration_seconds',
    'FUSE operation latency by operation.',
    ['pool', 'operation'],
    LATENCY_BUCKETS,
    this.registry,
  );

  readonly cacheHits = this.counter(
    'dynamicfs_cache_hits_total',
    'Cache hits by cache (extent: decoded extents; metadata: resolved paths).',
    ['pool', 'cache'],
  );
  readonly cacheMisses = this.counter('dynamicfs_cache_misses_total', 'Cache misses by cache.', ['pool', 'cache']);

  readonly rebuildAttempted = this.counter('dynamicfs_rebuild_extents_attempted_total', 'Extents a rebuild tried to re-protect.', ['pool']);
  readonly rebuildSucceeded = this.counter('dynamicfs_rebuild_extents_succeeded_total', 'Extents re-protected by a rebuild.', ['pool']);
  readonly rebuildFailed = this.counter('dynamicfs_rebuild_extents_failed_total', 'Extents a rebuild could not re-protect.', ['pool']);
  readonly rebuildBytes = this.counter('dynamicfs_rebuild_written_bytes_total', 'Fragment bytes written by rebuilds.', ['pool']);
  readonly rebuildRuns = this.counter('dynamicfs_rebuild_runs_total', 'Rebuild runs completed.', ['pool']);

  readonly scrubRuns = this.counter('dynamicfs_scrub_runs_total', 'Scrubs completed.', ['pool']);
  readonly scrubIssues = this.counter('dynamicfs_scrub_issues_total', 'Bad or missing fragments found by scrubs.', ['pool']);
  readonly scrubRepairs = this.counter('dynamicfs_scrub_repairs_total', 'Fragments rewritten by scrubs.', ['pool']);
  readonly scrubBytes = this.counter('dynamicfs_scrub_read_bytes_total', 'Fragment bytes read by scrubs.', ['pool']);

  /** Gauges read from the pools at scrape time (see pool-collector.ts). */
  readonly diskCapacity = this.gauge('dynamicfs_disk_capacity_bytes', 'Bytes a disk may hold (its cap, or its filesystem size).', [
    'pool',
    'disk',
    'tier',
  ]);
  readonly diskUsed = this.gauge('dynamicfs_disk_used_bytes', 'Fragment bytes on a disk.', ['pool', 'disk', 'tier']);
  readonly diskHealth = this.gauge('dynamicfs_disk_health', 'Disk health: 1 for its current state, 0 for the others.', [
    'pool',
    'disk',
    'state',
  ]);
  readonly extents = this.gauge('dynamicfs_extents', 'Extents by health.', ['pool', 'health']);
  readonly bytesAtRisk = this.gauge('dynamicfs_bytes_at_risk', 'Bytes in extents that are degraded or unrecoverable.', ['pool']);
  readonly poolHealth = this.gauge('dynamicfs_pool_health', 'Pool health: 1 for its current state, 0 for the others.', ['pool', 'state']);
  readonly capacityBytes = this.gauge('dynamicfs_pool_capacity_bytes', 'Raw bytes of the usable disks, each filesystem counted once.', [
    'pool',
  ]);
  readonly usableFreeBytes = this.gauge(
    'dynamicfs_pool_usable_free_bytes',
    'Bytes of data that still fit under the default policy, fragments spread over failure domains.',
    ['pool'],
  );
  readonly failureDomains = this.gauge('dynamicfs_failure_domains', 'Failure domains of the disks that take new data.', ['pool']);
  readonly policiesShortOfDomains = this.gauge(
    'dynamicfs_policies_short_of_failure_domains',
    'Policies in use that need more failure domains than the pool has (illusory redundancy when shared domains are allowed, failing writes otherwise).',
    ['pool'],
  );
  readonly sharedDomainExtents = this.gauge(
    'dynamicfs_extents_sharing_failure_domain',
    'Extents with two or more fragments in one failure domain.',
    ['pool'],
  );
  readonly diskDomain = this.gauge(
    'dynamicfs_disk_failure_domain_info',
    'The failure domain of each disk (always 1; the domain is a label).',
    ['pool', 'disk', 'domain'],
  );
  readonly usedBytes = this.gauge('dynamicfs_pool_used_bytes', 'Raw bytes used on the usable disks.', ['pool']);
  readonly rebuildInProgress = this.gauge('dynamicfs_rebuild_in_progress', '1 while a rebuild runs.', ['pool']);
  readonly rebuildProgress = this.gauge('dynamicfs_rebuild_progress_ratio', 'Share of the running rebuild done (0 to 1).', ['pool']);
  readonly scrubInProgress = this.gauge('dynamicfs_scrub_in_progress', '1 while a scrub runs.', ['pool']);
  readonly scrubProgress = this.gauge('dynamicfs_scrub_progress_ratio', 'Share of the running scrub done (0 to 1).', ['pool']);
  readonly scrubLastSuccess = this.gauge(
    'dynamicfs_scrub_last_success_timestamp_seconds',
    'When the last scrub completed, as a Unix timestamp (0: never).',
    ['pool'],
  );
  readonly scrubLastIssues = this.gauge('dynamicfs_scrub_last_issues', 'Issues found by the last completed scrub.', ['pool']);

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * The exposition with the scrape-time gauges brought up to date first (the registry gathers
   * metrics concurrently, so a collect hook could not be relied on to run before the others).
   */
  async scrape(): Promise<string> {
    await this.refresh();
    return this.registry.metrics();
  }

  async scrapeJson(): Promise<unknown> {
    await this.refresh();
    return this.registry.getMetricsAsJSON();
  }

  private async refresh(): Promise<void> {
    for (const r of this.refreshers) await r();
  }

  onCollect(refresh: () => Promise<void>): () => void {
    this.refreshers.push(refresh);
    return () => {
      this.refreshers = this.refreshers.filter((r) => r !== refresh);
    };
  }

  private counter(name: string, help: string, labelNames: string[]): Counter {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
  private gauge(name: string, help: string, labelNames: string[]): Gauge {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }
  private histogram(name: string, help: string, labelNames: string[]): Histogram {
    return new Histogram({ name, help, labelNames, buckets: LATENCY_BUCKETS, registers: [this.registry] });
  }
}

export const metrics = new EngineMetrics();
