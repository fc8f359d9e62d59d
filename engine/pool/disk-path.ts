import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { isAtOrUnder, type MountEntry } from '../util/mountinfo.js';
import { DISK_IDENTITY, POOL_IDENTITY } from './layout.js';

/**
 * Directories a disk may never be in or at: the host's system trees and the state that kubelet, the
 * container runtimes, etcd and DynamicFS itself trust. The engine creates, writes and deletes files
 * below a disk, so a disk here would let whoever may add one tamper with the node. (The CRD's CEL rules
 * use the same lists.)
 */
export const SYSTEM_TREES = [
  '/proc',
  '/sys',
  '/dev',
  '/etc',
  '/boot',
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/run',
  '/var/run',
  '/root',
  '/var/lib/kubelet',
  '/var/lib/dynamicfs',
  '/var/lib/containerd',
  '/var/lib/docker',
  '/var/lib/etcd',
];
/** Trees the kernel makes up (processes, devices, sysfs): nothing there is storage, whatever the administrator says. */
const KERNEL_TREES = ['/proc', '/sys', '/dev'];
/** Shared parents that may hold disks but are never one: a disk at /tmp or /mnt itself would claim everything below it. */
export const SHARED_PARENTS = ['/', '/var', '/var/lib', '/home', '/mnt', '/media', '/srv', '/opt', '/tmp', '/var/tmp'];
/** Entries looked at below a candidate for another pool's files (two levels): enough for a state directory, bounded for '/'. */
const SCAN_LIMIT = 4096;

export interface DiskPathProblem {
  problem: string;
  /** True for the allowed-roots and system-directory rules, which the CLI's --allow-any-path lifts; never for the rest. */
  overridable: boolean;
}

export interface DiskPathRules {
  /** This pool's directory. */
  poolDir: string;
  /** Where this pool is mounted, if it is. */
  mountpoint: string | null;
  /** The disks of this pool. */
  disks: string[];
  /** Disks must be at or under one of these (the chart's diskPaths); empty: anywhere but the system's directories. */
  allowedRoots: string[];
  /** Other directories no disk may be in or hold (the node agent's state directory). */
  protectedDirs?: string[];
  mounts: MountEntry[];
}

/** Problems of a disk path judged on the path alone: safe to run before anything under it is touched. */
export function diskPathProblemsByName(p: string, r: DiskPathRules): DiskPathProblem[] {
  const out: DiskPathProblem[] = [];
  const hard = (problem: string) => out.push({ problem, overridable: false });
  // A disk inside a DynamicFS mount is served by a daemon that would write fragments through itself: it hangs.
  for (const m of r.mounts.filter((x) => x.fstype.startsWith('fuse.dynamicfs'))) {
    if (isAtOrUnder(p, m.mountPoint)) hard(`${p} is inside the DynamicFS mount at ${m.mountPoint}`);
    else if (isAtOrUnder(m.mountPoint, p)) hard(`${p} holds the DynamicFS mount at ${m.mountPoint}`);
  }
  if (r.mountpoint && (isAtOrUnder(p, r.mountpoint) || isAtOrUnder(r.mountpoint, p)))
    hard(`${p} is or holds this pool's mount point ${r.mountpoint}`);
  if (isAtOrUnder(p, r.poolDir)) hard(`${p} is inside the pool directory ${r.poolDir}`);
  else if (isAtOrUnder(r.poolDir, p)) hard(`${p} holds the pool directory ${r.poolDir}`);
  for (const d of r.protectedDirs ?? []) {
    if (isAtOrUnder(p, d) || isAtOrUnder(d, p)) hard(`${p} is or holds DynamicFS's state directory ${d}`);
  }
  for (const d of r.disks) {
    if (d !== p && isAtOrUnder(p, d)) hard(`${p} is inside disk ${d} of this pool`);
    else if (d !== p && isAtOrUnder(d, p)) hard(`${p} holds disk ${d} of this pool`);
  }
  const tree = SYSTEM_TREES.find((t) => isAtOrUnder(p, t));
  // The kernel's own trees are never storage: no override.
  if (tree) out.push({ problem: `${p} is in the system directory ${tree}`, overridable: !KERNEL_TREES.includes(tree) });
  else if (SHARED_PARENTS.includes(p))
    out.push({ problem: `${p} is a system directory (a disk must be a directory of its own below it)`, overridable: true });
  if (r.allowedRoots.length && !r.allowedRoots.some((root) => isAtOrUnder(p, root))) {
    out.push({ problem: `${p} is outside the allowed disk roots (${r.allowedRoots.join(', ')})`, overridable: true });
  }
  return out;
}

/**
 * Problems that need a look at the filesystem: the real path (after links) judged again, another
 * pool's directory or disk at, above or (two levels) below the path.
 */
export async function diskPathProblems(p: string, r: DiskPathRules): Promise<DiskPathProblem[]> {
  const out = diskPathProblemsByName(p, r);
  if (out.some((x) => !x.overridable)) return out;
  const real = await fsp.realpath(p).catch(() => p);
  if (real !== p) {
    for (const x of diskPathProblemsByName(real, r)) out.push({ ...x, problem: `${p} leads to ${real}: ${x.problem}` });
  }
  for (let dir = real; ; dir = path.dirname(dir)) {
    if (await holdsIdentity(path.join(dir, POOL_IDENTITY)))
      out.push({ problem: `${p} is ${dir === real ? '' : 'inside '}the pool directory ${dir}`, overridable: false });
    if (dir !== real && (await holdsIdentity(path.join(dir, DISK_IDENTITY))))
      out.push({ problem: `${p} is inside ${dir}, a disk of a pool`, overridable: false });
    if (dir === '/') break;
  }
  const below = await findBelow(real);
  if (below) out.push({ problem: `${p} holds ${below}`, overridable: false });
  return out;
}

/**
 * Whether `file` is a DynamicFS identity file (a pool's pool.json or a disk's identity): JSON naming
 * a pool id. An unrelated file that happens to be called pool.json is not one.
 */
async function holdsIdentity(file: string): Promise<boolean> {
  try {
    const st = await fsp.lstat(file);
    if (!st.isFile() || st.size > 64 * 1024) return false;
    const v = JSON.parse(await fsp.readFile(file, 'utf8')) as { poolId?: unknown };
    return typeof v.poolId === 'string';
  } catch {
    return false;
  }
}

/**
 * What a `mkdir -p` of `p` would really create: every link on the way followed (a dangling one too,
 * since mkdir would create its target), the missing rest appended.
 */
export async function resolveExisting(p: string, depth = 0): Promise<string> {
  if (depth > 40) return p; // a loop of links: mkdir would fail with ELOOP
  const parts = p.split('/').filter(Boolean);
  let cur = '/';
  for (let i = 0; i < parts.length; i++) {
    const next = path.join(cur, parts[i]);
    const st = await fsp.lstat(next).catch(() => null);
    if (!st) return path.join(next, ...parts.slice(i + 1));
    if (st.isSymbolicLink())
      return resolveExisting(path.join(path.resolve(cur, await fsp.readlink(next)), ...parts.slice(i + 1)), depth + 1);
    cur = next;
  }
  return cur;
}

/** A pool directory or a disk of a pool one or two levels below `dir` (bounded), or null. */
async function findBelow(dir: string): Promise<string | null> {
  let seen = 0;
  const children = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const c of children) {
    if (!c.isDirectory() || ++seen > SCAN_LIMIT) continue;
    const child = path.join(dir, c.name);
    if (await holdsIdentity(path.join(child, POOL_IDENTITY))) return `the pool directory ${child}`;
    if (await holdsIdentity(path.join(child, DISK_IDENTITY))) return `${child}, a disk of a pool`;
    const grand = await fsp.readdir(child, { withFileTypes: true }).catch(() => []);
    for (const g of grand) {
      if (!g.isDirectory() || ++seen > SCAN_LIMIT) continue;
      const p = path.join(child, g.name);
      if (await holdsIdentity(path.join(p, POOL_IDENTITY))) return `the pool directory ${p}`;
    }
  }
  return null;
}
