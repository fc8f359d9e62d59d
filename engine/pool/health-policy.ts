import type { DiskHealth } from './disk-health.js';
import type { Disk } from './disk-set.js';

/** When I/O errors move a disk out of healthy. Defaults here; a pool can override them in metadata. */
export interface HealthThresholds {
  /** Read, checksum or write errors after which a healthy disk turns suspect (still read, not written). */
  errorsSuspect: number;
  /** Read errors (EIO and the like, not checksum mismatches) after which a disk turns failed (not read). */
  readErrorsFailed: number;
  /** A fragment read or write slower than this many milliseconds counts as slow. */
  slowIoMs: number;
  /** Slow operations after which a healthy disk turns degraded (still read, no new data). */
  slowOpsDegraded: number;
}

export const DEFAULT_THRESHOLDS: HealthThresholds = { errorsSuspect: 3, readErrorsFailed: 20, slowIoMs: 2000, slowOpsDegraded: 5 };

export type DiskErrorKind = 'read' | 'write' | 'checksum' | 'readonly' | 'slow';

/** Errors seen since a disk was last (re)trusted, kept per process. */
export interface ErrorTally {
  read: number;
  write: number;
  checksum: number;
  slow: number;
}

/**
 * The state a disk should move to after an error, or null to stay. Checksum and write errors only
 * ever make a disk suspect: it still serves reads, so automatic transitions never make data
 * unreadable that the disk could still return. Only repeated read failures fail it.
 */
export function nextHealth(
  d: Disk,
  kind: DiskErrorKind,
  tally: ErrorTally,
  t: HealthThresholds,
): { state: DiskHealth; reason: string } | null {
  if (d.health === 'failed') return null;
  if (kind === 'read' && tally.read >= t.readErrorsFailed)
    return { state: 'failed', reason: `${tally.read} read errors (threshold ${t.readErrorsFailed})` };
  if (d.health !== 'healthy') return null;
  if (kind === 'readonly') return { state: 'suspect', reason: 'its filesystem refuses writes (read-only)' };
  if (kind === 'slow') {
    return tally.slow >= t.slowOpsDegraded
      ? { state: 'degraded', reason: `${tally.slow} fragment operations slower than ${t.slowIoMs} ms (threshold ${t.slowOpsDegraded})` }
      : null;
  }
  const n = tally.read + tally.write + tally.checksum;
  if (n >= t.errorsSuspect) {
    return {
      state: 'suspect',
      reason: `${n} I/O errors (${tally.read} read, ${tally.checksum} checksum, ${tally.write} write; threshold ${t.errorsSuspect})`,
    };
  }
  return null;
}
