import type { ExtentStore } from '../data/extent-store.js';
import { printableName } from '../util/byte-names.js';
import { policyOf } from '../data/extent-store.js';
import type { Namespace } from '../fs/namespace.js';
import type { Pool } from '../pool/pool.js';
import { toleratedLosses } from '../redundancy/policy.js';
import { logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { currentTrace, withTrace } from '../observability/trace.js';
import { readFragments, releaseAll, repairExtent } from './repair.js';

export interface ScrubIssue {
  paths: string[];
  ino: number;
  extent: number;
  offset: number;
  eid: number;
  slot: number;
  disk: string;
  problem: string;
  repaired: boolean;
}
export interface ScrubReport {
  startedAt: string;
  finishedAt: string;
  repair: boolean;
  bytesRead: number;
  extents: { scanned: number; healthy: number; degraded: number; unrecoverable: number };
  issues: ScrubIssue[];
  repaired: number;
  unrecoverable: { path: string; start: number; end: number }[];
}

export interface ScrubProgress {
  extentsDone: number;
  extentsTotal: number;
  bytesRead: number;
}

const log = logger('scrub');
const LAST_SCRUB = 'last_scrub';
const CHECKPOINT = 'scrub_checkpoint';
/** How often an interrupted scrub's resume point is saved: every this many extents or this many ms. */
const CHECKPOINT_EVERY = 32;
const CHECKPOINT_MS = 1000;

interface Checkpoint {
  ino: number;
  idx: number;
  report: ScrubReport;
}

/** Pause and resume a running scrub from another command (the daemon serves both). */
export class ScrubControl {
  paused = false;
  private waiters: (() => void)[] = [];
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    for (const w of this.waiters.splice(0)) w();
  }
  async whilePaused(): Promise<void> {
    while (this.paused) await new Promise<void>((r) => this.waiters.push(r));
  }
}

/**
 * Reads every fragment of every extent (parity included), verifies its checksum and presence,
 * classifies each extent, and with `repair` rewrites bad or missing fragments from the good ones.
 * Every bad fragment is named: file, extent, slot, disk and what was wrong.
 */
export interface ScrubOptions {
  repair: boolean;
  onProgress?: (p: ScrubProgress) => void;
  bandwidthBytes?: number;
  control?: ScrubControl;
  restart?: boolean;
}

export function scrub(pool: Pool, ns: Namespace, extents: ExtentStore, opts: ScrubOptions): Promise<ScrubReport> {
  return currentTrace() ? scrubTraced(pool, ns, extents, opts) : withTrace('scrub', () => scrubTraced(pool, ns, extents, opts));
}

async function scrubTraced(pool: Pool, ns: Namespace, extents: ExtentStore, opts: ScrubOptions): Promise<ScrubReport> {
  const labels = { pool: pool.name };
  const E = pool.settings.extentSize;
  const store = pool.store;
  const total = store.extentCount();
  // An interrupted scrub (crash, kill, unmount) resumes where its checkpoint says, unless restarted.
  const saved = opts.restart ? undefined : store.getMeta(CHECKPOINT);
  const checkpoint = saved ? (JSON.parse(saved) as Checkpoint) : null;
  const report: ScrubReport = checkpoint?.report ?? {
    startedAt: new Date().toISOString(),
    finishedAt: '',
    repair: opts.repair,
    bytesRead: 0,
    extents: { scanned: 0, healthy: 0, degraded: 0, unrecoverable: 0 },
    issues: [],
    repaired: 0,
    unrecoverable: [],
  };
  report.repair = opts.repair;
  log.event('info', checkpoint ? `scrub resumed after ${report.extents.scanned} of ${total} extents` : `scrub started: ${total} extents`, {
    pool: pool.name,
    repair: opts.repair,
    total,
  });
  const started = Date.now();
  let readThisRun = 0;
  let savedAt = Date.now();
  for (const ext of store.allExtentsAfter(checkpoint?.ino ?? -1, checkpoint?.idx ?? -1)) {
    await opts.control?.whilePaused();
    const frags = store.fragments(ext.eid);
    const { got, problems, bytes } = await readFragments(extents, ext, frags, { all: true });
    report.bytesRead += bytes;
    metrics.scrubBytes.inc(labels, bytes);
    report.extents.scanned++;
    const policy = policyOf(ext.policy);
    const bad = [...problems.keys()].sort((a, b) => a - b);
    const health = bad.length === 0 ? 'healthy' : bad.length <= toleratedLosses(policy) ? 'degraded' : 'unrecoverable';
    report.extents[health]++;
    let repaired = new Set<number>();
    if (opts.repair && health === 'degraded') {
      const outcome = await repairExtent(extents, ext, frags, got, bad);
      repaired = new Set(outcome.repaired);
      report.repaired += outcome.repaired.length;
      metrics.scrubRepairs.inc(labels, outcome.repaired.length);
    }
    releaseAll(extents, got);
    if (bad.length) {
      const paths = ns.pathsOf(ext.ino);
      metrics.scrubIssues.inc(labels, bad.length);
      for (const slot of bad) {
        log.event(
          'warn',
          `scrub: fragment ${ext.eid}.${slot} of ${paths[0] === undefined ? `inode ${ext.ino}` : printableName(paths[0])} (extent ${ext.idx}) is ${problems.get(slot) ?? 'bad'}${repaired.has(slot) ? ', repaired' : ''}`,
          {
            pool: pool.name,
            eid: ext.eid,
            slot,
            disk: frags.find((f) => f.slot === slot)?.disk,
            problem: problems.get(slot),
            repaired: repaired.has(slot),
          },
        );
        report.issues.push({
          paths,
          ino: ext.ino,
          extent: ext.idx,
          offset: ext.idx * E,
          eid: ext.eid,
          slot,
          disk: frags.find((f) => f.slot === slot)?.disk ?? '-',
          problem: problems.get(slot) ?? '?',
          repaired: repaired.has(slot),
        });
      }
      if (health === 'unrecoverable')
        for (const p of paths) report.unrecoverable.push({ path: p, start: ext.idx * E, end: ext.idx * E + ext.length });
    }
    readThisRun += bytes;
    opts.onProgress?.({ extentsDone: report.extents.scanned, extentsTotal: total, bytesRead: report.bytesRead });
    if (report.extents.scanned % CHECKPOINT_EVERY === 0 || Date.now() - savedAt > CHECKPOINT_MS) {
      store.setMeta(CHECKPOINT, JSON.stringify({ ino: ext.ino, idx: ext.idx, report }));
      savedAt = Date.now();
    }
    if (opts.bandwidthBytes) {
      // Throttle: sleep until this run's average read rate is back under the limit.
      const ahead = readThisRun / opts.bandwidthBytes - (Date.now() - started) / 1000;
      if (ahead > 0) await new Promise((r) => setTimeout(r, ahead * 1000));
    }
  }
  report.finishedAt = new Date().toISOString();
  store.tx(() => {
    store.setMeta(LAST_SCRUB, JSON.stringify({ ...report, issues: report.issues.length }));
    store.deleteMeta(CHECKPOINT);
  });
  metrics.scrubRuns.inc(labels);
  pool.recordHistory('scrub', { issues: report.issues.length, repaired: report.repaired, unrecoverable: report.extents.unrecoverable });
  log.event(
    report.issues.length ? 'warn' : 'info',
    `scrub finished: ${report.extents.scanned} extents, ${report.issues.length} issues, ${report.repaired} repaired, ${report.extents.unrecoverable} unrecoverable`,
    {
      pool: pool.name,
      ...report.extents,
      issues: report.issues.length,
      repaired: report.repaired,
      bytesRead: report.bytesRead,
    },
  );
  return report;
}

export function lastScrub(pool: Pool): (Omit<ScrubReport, 'issues'> & { issues: number }) | null {
  const text = pool.store.getMeta(LAST_SCRUB);
  return text ? (JSON.parse(text) as Omit<ScrubReport, 'issues'> & { issues: number }) : null;
}
