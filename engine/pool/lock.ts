import fs from 'node:fs';
import path from 'node:path';
import { isNodeError } from '../util/errors.js';
import { POOL_LOCK } from './layout.js';

export interface LockOwner {
  pid: number;
  mountpoint: string | null;
  since: string;
}

export class PoolBusyError extends Error {
  constructor(
    readonly poolDir: string,
    readonly owner: LockOwner,
  ) {
    super(
      `pool ${poolDir} is in use by process ${owner.pid}` +
        (owner.mountpoint ? ` (mounted at ${owner.mountpoint})` : '') +
        '; unmount it first or run the command while it is mounted (it is forwarded to that process)',
    );
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isNodeError(err, 'EPERM');
  }
}

/** The live owner of a pool, if any (a lock whose process is gone is stale and ignored). */
export function readLockOwner(poolDir: string, includeSelf = false): LockOwner | undefined {
  try {
    const owner = JSON.parse(fs.readFileSync(path.join(poolDir, POOL_LOCK), 'utf8')) as LockOwner;
    return alive(owner.pid) && (includeSelf || owner.pid !== process.pid) ? owner : undefined;
  } catch {
    return undefined;
  }
}

/** One process owns a pool. The lock file holds the owner's pid; a dead owner's lock is taken over. */
export class PoolLock {
  private constructor(private readonly file: string) {}

  static acquire(poolDir: string, mountpoint: string | null): PoolLock {
    const file = path.join(poolDir, POOL_LOCK);
    const me: LockOwner = { pid: process.pid, mountpoint, since: new Date().toISOString() };
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        // Written aside and linked into place, so the lock appears with its owner in it: a reader never
        // finds it empty (and takes it for a stale lock, or a daemon that is starting for none).
        const aside = `${file}.${process.pid}`;
        fs.writeFileSync(aside, JSON.stringify(me), { mode: 0o600 });
        try {
          fs.linkSync(aside, file);
        } finally {
          fs.rmSync(aside, { force: true });
        }
        return new PoolLock(file);
      } catch (err) {
        if (!isNodeError(err, 'EEXIST')) throw err;
        const owner = readLockOwner(poolDir, true);
        if (owner) throw new PoolBusyError(poolDir, owner);
        try {
          fs.unlinkSync(file);
        } catch (e) {
          if (!isNodeError(e, 'ENOENT')) throw e;
        }
      }
    }
    throw new Error(`could not take the lock ${file}: it keeps changing hands`);
  }

  updateMountpoint(mountpoint: string | null): void {
    fs.writeFileSync(this.file, JSON.stringify({ pid: process.pid, mountpoint, since: new Date().toISOString() }));
  }

  release(): void {
    try {
      fs.unlinkSync(this.file);
    } catch {
      /* already gone */
    }
  }
}
