import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { ExtentStore } from '../data/extent-store.js';
import { readDiskIdentity } from '../pool/identity.js';
import { DISK_DATA_DIR } from '../pool/layout.js';
import { PoolError, type Pool } from '../pool/pool.js';

export interface ProbeResult {
  disk: string;
  path: string;
  at: string;
  ok: boolean;
  problems: string[];
  latencyMs: number;
  freeBytes: number;
  transition: { from: string; to: string; reason: string } | null;
}

const PROBE_BYTES = 64 * 1024;

async function probeOne(pool: Pool, id: string): Promise<ProbeResult> {
  const d = pool.disks.get(id);
  if (!d) throw new PoolError(`no disk ${id}`);
  const at = new Date();
  const problems: string[] = [];
  let identityBad = false;
  const identity = await readDiskIdentity(d.path).catch(() => undefined);
  if (!identity) {
    problems.push(`identity file missing at ${d.path}`);
    identityBad = true;
  } else if (identity.poolId !== pool.id || identity.diskId !== d.id) {
    problems.push(`identity file at ${d.path} names disk ${identity.diskId} of pool ${identity.poolId}`);
    identityBad = true;
  }
  const start = performance.now();
  if (!identityBad) {
    const file = path.join(d.path, DISK_DATA_DIR, `.probe-${process.pid}-${at.getTime()}`);
    const data = randomBytes(PROBE_BYTES);
    try {
      const fh = await fsp.open(file, 'w', 0o600);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      const back = await fsp.readFile(file);
      if (!back.equals(data)) problems.push('the probe file read back different bytes');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push(code === 'EROFS' ? 'the filesystem is read-only' : `probe I/O failed: ${code ?? (err as Error).message}`);
    } finally {
      await fsp.rm(file, { force: true }).catch(() => undefined);
    }
  }
  const latencyMs = performance.now() - start;
  await pool.disks.refreshSpace();
  const ok = problems.length === 0;
  let transition: ProbeResult['transition'] = null;
  if (!ok && d.health !== 'failed') {
    const to = identityBad ? 'failed' : 'suspect';
    if (d.health !== to) {
      const reason = `probe: ${problems.join('; ')}`;
      transition = { from: d.health, to, reason };
      pool.setDiskHealth(d.id, to, reason);
    }
  }
  const result: ProbeResult = {
    disk: d.id,
    path: d.path,
    at: at.toISOString(),
    ok,
    problems,
    latencyMs: Math.round(latencyMs * 10) / 10,
    freeBytes: d.fsFree,
    transition,
  };
  pool.store.setMeta(`last_probe:${d.id}`, JSON.stringify({ at: result.at, ok, problems, latencyMs: result.latencyMs }));
  return result;
}

/** Writes, fsyncs, reads back and removes a probe file on every disk, and checks its identity. */
export async function probeDisks(pool: Pool): Promise<ProbeResult[]> {
  const out: ProbeResult[] = [];
  for (const d of pool.disks.all()) out.push(await probeOne(pool, d.id));
  return out;
}

export function lastProbe(pool: Pool, id: string): { at: string; ok: boolean; problems: string[]; latencyMs: number } | null {
  const text = pool.store.getMeta(`last_probe:${id}`);
  return text ? JSON.parse(text) : null;
}

/**
 * Trusting a failed disk again takes a probe that passed after it failed; then every fragment it
 * still holds is verified, and the bad ones are recorded for scrub and rebuild to repair.
 */
export async function reTrustDisk(
  pool: Pool,
  extents: ExtentStore,
  id: string,
  reason: string,
): Promise<{ verified: number; bad: number }> {
  const d = pool.disks.get(id);
  if (!d) throw new PoolError(`no disk ${id}`);
  const probe = lastProbe(pool, id);
  if (!probe || !probe.ok || Date.parse(probe.at) < d.healthChangedAt) {
    throw new PoolError(`disk ${id} is failed; run 'dynamicfs probe-disks' and get a passing probe before setting it healthy`);
  }
  pool.setDiskHealth(id, 'suspect', `${reason}: verifying its fragments before reuse`);
  let verified = 0;
  let bad = 0;
  for (const f of pool.store.fragmentsOnDisk(id)) {
    const ext = pool.store.extentByEid(f.eid);
    if (!ext) continue;
    const r = await extents.checkFragment(ext, f);
    if (r.data) {
      verified++;
      extents.release(r.data);
    } else bad++;
  }
  pool.setDiskHealth(id, 'healthy', `${reason}; ${verified} fragment(s) verified, ${bad} bad (queued for repair)`);
  return { verified, bad };
}
