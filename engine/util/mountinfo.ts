import { promises as fsp } from 'node:fs';

/** One line of /proc/self/mountinfo (proc(5)). */
export interface MountEntry {
  id: number;
  parent: number;
  /** major:minor of the filesystem. */
  dev: string;
  /** The directory of the filesystem that is mounted here (`/vol` for a bind mount of a volume). */
  root: string;
  mountPoint: string;
  /** Per-mount options: ro/rw, nosuid, nodev, noexec, atime flags. */
  options: string[];
  fstype: string;
  source: string;
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040 ...). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 3) continue;
    out.push({
      id: Number(f[0]),
      parent: Number(f[1]),
      dev: f[2],
      root: unescape(f[3]),
      mountPoint: unescape(f[4]),
      options: f[5].split(','),
      fstype: f[sep + 1],
      source: unescape(f[sep + 2]),
      superOptions: (f[sep + 3] ?? '').split(','),
    });
  }
  return out;
}

export async function readMounts(): Promise<MountEntry[]> {
  return parseMountinfo(await fsp.readFile('/proc/self/mountinfo', 'utf8'));
}

/** The mount that is visible at `mountPoint`: the last one mounted there (mounts stack). */
export function topMountAt(mounts: MountEntry[], mountPoint: string): MountEntry | undefined {
  let top: MountEntry | undefined;
  for (const m of mounts) if (m.mountPoint === mountPoint) top = m;
  return top;
}

/** Whether `p` is `dir` or lies inside it (on the path alone). */
export function isAtOrUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`);
}

/** The type a DynamicFS mount (the pool's and its volumes' bind mounts) shows in mountinfo. */
export const FUSE_TYPE = 'fuse.dynamicfs';

/**
 * The whole-pool mount of `fsname` (`dynamicfs:<pool>`) when it is what is visible at `mountPoint`:
 * known from mountinfo alone, so nobody, the daemon serving it least of all, has to look the mount up.
 */
export function poolMountAt(mounts: MountEntry[], mountPoint: string, fsname: string): MountEntry | undefined {
  const top = topMountAt(mounts, mountPoint);
  return top && top.fstype === FUSE_TYPE && top.source === fsname && top.root === '/' ? top : undefined;
}

/**
 * Whether the mount `own` (as mountinfo showed it when it was made) is still attached somewhere. A
 * mount id is reused once its mount is gone, so the device must match too (a FUSE mount's anonymous
 * device stays taken while its connection lives).
 */
export function isAttached(mounts: MountEntry[], own: MountEntry): boolean {
  return mounts.some((m) => m.id === own.id && m.dev === own.dev);
}

/** Whether `own` is the mount visible at its mount point (not gone, nor covered by a later mount there). */
export function isOnTop(mounts: MountEntry[], own: MountEntry): boolean {
  const top = topMountAt(mounts, own.mountPoint);
  return top !== undefined && top.id === own.id && top.dev === own.dev;
}
