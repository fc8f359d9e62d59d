import type { DiskHealth } from './disk-health.js';
import type { Disk } from './disk-set.js';

/** When I/O errors move a disk out of healthy. Defaults here; a pool can override them in metadata. */
export interface HealthThresholds {
  /** Read or checksum errors after which a healthy disk turns suspect (read, not written). */
  readErrorsSuspect: number;
  /** Read or checksum errors after which a disk turns failed (not read any more). */
  readErrorsFailed: number;
  /** Write errors after which a disk turns failed. */
  writeErrorsFailed: number;
}

export const DEFAULT_THRESHOLDS: HealthThresholds = { readErrorsSuspect: 3, readErrorsFailed: 20, writeErrorsFailed: 3 };

export type DiskErrorKind = 'read' | 'write' | 'checksum' | 'readonly';

/** The state a disk should move to after an error, with the reason, or null to stay. */
export function nextHealth(d: Disk, kind: DiskErrorKind, t: HealthThresholds): { state: DiskHealth; reason: string } | null {
  if (d.health === 'failed') return null;
  const readish = d.readErrors + d.checksumErrors;
  if (kind === 'readonly' && d.health === 'healthy') return { state: 'suspect', reason: 'its filesystem refuses writes (read-only)' };
  if (kind === 'write' && d.writeErrors >= t.writeErrorsFailed) return { state: 'failed', reason: `${d.writeErrors} write errors (threshold ${t.writeErrorsFailed})` };
  if ((kind === 'read' || kind === 'checksum') && readish >= t.readErrorsFailed) {
    return { state: 'failed', reason: `${readish} read/checksum errors (threshold ${t.readErrorsFailed})` };
  }
  if ((kind === 'read' || kind === 'checksum') && readish >= t.readErrorsSuspect && d.health === 'healthy') {
    return { state: 'suspect', reason: `${readish} read/checksum errors (threshold ${t.readErrorsSuspect})` };
  }
  return null;
}
