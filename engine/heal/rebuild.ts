import { assessAll, type ExtentAssessment } from '../check/extent-health.js';
import type { ExtentStore } from '../data/extent-store.js';
import { policyOf } from '../data/extent-store.js';
import type { Pool } from '../pool/pool.js';
import { fragmentCount } from '../redundancy/policy.js';
import { logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { currentTrace, withTrace } from '../observability/trace.js';
import { readFragments, releaseAll, repairExtent } from './repair.js';

export interface RebuildReport {
  startedAt: string;
  finishedAt: string;
  extents: { scanned: number; needingRebuild: number; rebuilt: number; failed: number };
  fragmentsWritten: number;
  bytesWritten: number;
  /** Surviving fragment bytes read to rebuild from (replication: one copy; erasure k+m: k shards per lost one). */
  bytesRead: number;
  failures: { ino: number; extent: number; eid: number; error: string }[];
}
/** Set while a rebuild runs; a mount daemon that finds it at start resumes the rebuild. */
const log = logger('rebuild');

export const REBUILD_MARK = 'rebuild_in_progress';

export function rebuildInterrupted(pool: Pool): boolean {
  return pool.store.getMeta(REBUILD_MARK) !== undefined;
}

export interface RebuildProgress {
  extentsDone: number;
  extentsTotal: number;
  bytesWritten: number;
}

/**
 * Re-protects every extent that lost fragments (failed disk, missing file, bad checksum) onto
 * healthy disks, keeping fragments on distinct disks. Extents with the fewest surviving
 * fragments go first. Only what was lost is copied.
 */
const running = new WeakMap<Pool, Promise<unknown>>();

/** One rebuild per pool at a time: a second request waits for the first, then re-checks what is left. */
export function rebuild(pool: Pool, extents: ExtentStore, opts: RebuildOptions = {}): Promise<RebuildReport> {
  const prev = running.get(pool) ?? Promise.resolve();
  const next = prev.catch(() => undefined).then(() => rebuildNow(pool, extents, opts));
  running.set(pool, next);
  return next;
}

interface RebuildOptions {
  onProgress?: (p: RebuildProgress) => void;
  concurrency?: number;
  bandwidthBytes?: number;
}

function rebuildNow(pool: Pool, extents: ExtentStore, opts: RebuildOptions): Promise<RebuildReport> {
  return currentTrace() ? rebuildTraced(pool, extents, opts) : withTrace('rebuild', () => rebuildTraced(pool, extents, opts));
}

async function rebuildTraced(pool: Pool, extents: ExtentStore, opts: RebuildOptions): Promise<RebuildReport> {
  const started = new Date();
  const labels = { pool: pool.name };
  const todo: ExtentAssessment[] = [];
  let scanned = 0;
  await assessAll(pool, (a) => {
    scanned++;
    if (a.health !== 'healthy') todo.push(a);
  });
  const survivors = (a: ExtentAssessment) => fragmentCount(policyOf(a.extent.policy)) - a.lost.length;
  todo.sort((a, b) => survivors(a) - survivors(b));
  pool.store.setMeta(REBUILD_MARK, started.toISOString());
  log.event('info', `rebuild started: ${todo.length} of ${scanned} extents need it`, { pool: pool.name, scanned, needing: todo.length });
  const report: RebuildReport = {
    startedAt: started.toISOString(),
    finishedAt: '',
    extents: { scanned, needingRebuild: todo.length, rebuilt: 0, failed: 0 },
    fragmentsWritten: 0,
    bytesWritten: 0,
    bytesRead: 0,
    failures: [],
  };
  let done = 0;
  const one = async (a: ExtentAssessment): Promise<void> => {
    const ext = pool.store.extent(a.extent.ino, a.extent.idx);
    if (!ext || ext.eid !== a.extent.eid) return; // rewritten since the scan: the new version is fully protected
    const frags = pool.store.fragments(ext.eid);
    const { got, problems, bytes } = await readFragments(
      extents,
      ext,
      frags.filter((f) => !a.lost.some((l) => l.slot === f.slot)),
      { all: false },
    );
    report.bytesRead += bytes;
    const lost = [...new Set([...a.lost.map((l) => l.slot), ...[...problems.keys()].filter((s) => !got[s])])].filter(
      (s) => s < fragmentCount(policyOf(ext.policy)),
    );
    const outcome = await repairExtent(
      extents,
      ext,
      frags,
      got,
      lost.filter((s) => frags.some((f) => f.slot === s)),
      { readBack: false },
    );
    releaseAll(extents, got);
    report.fragmentsWritten += outcome.repaired.length;
    report.bytesWritten += outcome.bytesWritten;
    metrics.rebuildAttempted.inc(labels);
    metrics.rebuildBytes.inc(labels, outcome.bytesWritten);
    if (outcome.failed.length === 0) {
      report.extents.rebuilt++;
      metrics.rebuildSucceeded.inc(labels);
    } else {
      report.extents.failed++;
      metrics.rebuildFailed.inc(labels);
      log.warn(`rebuild of extent ${ext.eid} (inode ${ext.ino}, extent ${ext.idx}) failed`, {
        pool: pool.name,
        eid: ext.eid,
        errors: outcome.failed,
      });
      report.failures.push({
        ino: ext.ino,
        extent: ext.idx,
        eid: ext.eid,
        error: outcome.failed.map((f) => `slot ${f.slot}: ${f.error}`).join('; '),
      });
    }
  };
  // A few extents at a time, taken in most-at-risk order.
  let next = 0;
  const t0 = Date.now();
  const worker = async (): Promise<void> => {
    while (next < todo.length) {
      await one(todo[next++]);
      if (opts.bandwidthBytes) {
        const ahead = report.bytesWritten / opts.bandwidthBytes - (Date.now() - t0) / 1000;
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead * 1000));
      }
      done++;
      opts.onProgress?.({ extentsDone: done, extentsTotal: todo.length, bytesWritten: report.bytesWritten });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 8) }, worker));
  report.finishedAt = new Date().toISOString();
  metrics.rebuildRuns.inc(labels);
  pool.recordHistory('rebuild', {
    attempted: report.extents.needingRebuild,
    rebuilt: report.extents.rebuilt,
    failed: report.extents.failed,
  });
  log.event(
    report.extents.failed ? 'warn' : 'info',
    `rebuild finished: ${report.extents.rebuilt} rebuilt, ${report.extents.failed} failed, ${report.bytesWritten} bytes written`,
    {
      pool: pool.name,
      ...report.extents,
      bytesWritten: report.bytesWritten,
      seconds: (Date.now() - started.getTime()) / 1000,
    },
  );
  if (report.extents.failed === 0) pool.store.deleteMeta(REBUILD_MARK);
  void pool.reapGarbage();
  pool.scheduleMirror(0);
  return report;
}
