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
