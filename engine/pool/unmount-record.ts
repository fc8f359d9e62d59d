/** How the last mount of a pool ended: kept in the pool's metadata, shown by `status` after the daemon is gone. */
export interface UnmountRecord {
  at: string;
  mountpoint: string;
  pid: number;
  /** What ended it: a signal, a shutdown request, the mount removed from outside, a failed connection. */
  reason: string;
  /** The mount was taken away from outside (umount, fusermount -u, umount -l), not by the daemon. */
  fromOutside: boolean;
}

/** The `meta` table of the pool's metadata. */
export interface MetaTable {
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
}

const KEY = 'last_unmount';

export function recordUnmount(meta: MetaTable, r: UnmountRecord): void {
  meta.setMeta(KEY, JSON.stringify(r));
}

export function lastUnmount(meta: MetaTable): UnmountRecord | null {
  const raw = meta.getMeta(KEY);
  if (!raw) return null;
  try {
    const r = JSON.parse(raw) as Partial<UnmountRecord>;
    if (typeof r.at !== 'string' || typeof r.mountpoint !== 'string' || typeof r.reason !== 'string') return null;
    return { at: r.at, mountpoint: r.mountpoint, pid: Number(r.pid), reason: r.reason, fromOutside: r.fromOutside === true };
  } catch {
    return null;
  }
}
