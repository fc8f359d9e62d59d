import type { HotCount, HotSeries } from './hot-metrics.js';
import { metrics } from './metrics.js';

interface DiskSeries {
  reads: HotCount;
  readBytes: HotCount;
  readSeconds: HotSeries;
  writes: HotCount;
  writtenBytes: HotCount;
  writeSeconds: HotSeries;
}

/** Recent fragment latencies, for the percentiles diagnostics report (histograms only give buckets). */
class LatencyWindow {
  private readonly samples: Float64Array;
  private next = 0;
  private filled = 0;
  constructor(size: number) {
    this.samples = new Float64Array(size);
  }
  add(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.samples.length;
    if (this.filled < this.samples.length) this.filled++;
  }
  percentiles(ps: number[]): number[] | null {
    if (this.filled === 0) return null;
    const sorted = Float64Array.from(this.samples.subarray(0, this.filled)).sort();
    return ps.map((p) => sorted[Math.min(this.filled - 1, Math.floor((p / 100) * this.filled))]);
  }
  get count(): number {
    return this.filled;
  }
}

/** Per-pool fragment I/O accounting: Prometheus counters and histograms, and windows for diagnostics. */
class DiskIo {
  private readonly windows = new Map<string, { read: LatencyWindow; write: LatencyWindow }>();
  private readonly totals = new Map<string, { readBytes: number; writtenBytes: number; reads: number; writes: number; since: number }>();
  /** Each disk's metric series, resolved once (see hot-metrics.ts). */
  private readonly perDisk = new Map<string, Map<string, DiskSeries>>();
  enabled = true;

  note(pool: string, disk: string, kind: 'read' | 'write', ms: number, bytes: number): void {
    let w = this.windows.get(pool);
    if (!w) {
      w = { read: new LatencyWindow(4096), write: new LatencyWindow(4096) };
      this.windows.set(pool, w);
    }
    w[kind].add(ms);
    let t = this.totals.get(pool);
    if (!t) {
      t = { readBytes: 0, writtenBytes: 0, reads: 0, writes: 0, since: Date.now() };
      this.totals.set(pool, t);
    }
    if (kind === 'read') {
      t.reads++;
      t.readBytes += bytes;
    } else {
      t.writes++;
      t.writtenBytes += bytes;
    }
    if (!this.enabled) return;
    const m = this.series(pool, disk);
    if (kind === 'read') {
      m.reads.inc();
      m.readBytes.inc(bytes);
      m.readSeconds.observe(ms / 1000);
    } else {
      m.writes.inc();
      m.writtenBytes.inc(bytes);
      m.writeSeconds.observe(ms / 1000);
    }
  }

  private series(pool: string, disk: string): DiskSeries {
    let byDisk = this.perDisk.get(pool);
    if (!byDisk) {
      byDisk = new Map();
      this.perDisk.set(pool, byDisk);
    }
    let m = byDisk.get(disk);
    if (!m) {
      const labels = { pool, disk };
      m = {
        reads: metrics.diskReads.with(labels),
        readBytes: metrics.diskReadBytes.with(labels),
        readSeconds: metrics.diskReadSeconds.with(labels),
        writes: metrics.diskWrites.with(labels),
        writtenBytes: metrics.diskWrittenBytes.with(labels),
        writeSeconds: metrics.diskWriteSeconds.with(labels),
      };
      byDisk.set(disk, m);
    }
    return m;
  }

  /** p50, p95 and p99 in milliseconds over the last few thousand operations, or null before any. */
  latency(pool: string, kind: 'read' | 'write'): { p50: number; p95: number; p99: number; samples: number } | null {
    const w = this.windows.get(pool)?.[kind];
    const p = w?.percentiles([50, 95, 99]);
    return p && w ? { p50: p[0], p95: p[1], p99: p[2], samples: w.count } : null;
  }

  totalsOf(pool: string): { readBytes: number; writtenBytes: number; reads: number; writes: number; since: number } | null {
    return this.totals.get(pool) ?? null;
  }
}

export const diskIo = new DiskIo();
