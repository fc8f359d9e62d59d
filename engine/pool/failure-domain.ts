import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { readMounts, type MountEntry } from '../util/mountinfo.js';

/**
 * What a disk directory really sits on. `units` are the physical devices whose loss loses the
 * directory (the whole disk behind a partition, the device behind a loop file's filesystem, every
 * member of a device-mapper or md device); two disks that share a unit share a failure domain.
 * `fs` names the filesystem, so that free space shared by several disk directories is counted once.
 */
export interface DeviceProbe {
  units: string[];
  /** How the directory reaches its devices, for people: `vda`, `loop3 -> vda`, `tmpfs 0:45`. */
  label: string;
  fs: string;
}

const SYS_BLOCK = '/sys/dev/block';

const devName = (dev: number): string => `${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}`;

async function read(p: string): Promise<string | null> {
  return fsp.readFile(p, 'utf8').then((s) => s.trim(), () => null);
}

/**
 * The physical units behind block device MAJ:MIN, following partitions to their disk, loop devices
 * to the filesystem of their backing file, and device-mapper and md devices to their members.
 */
async function blockUnits(majMin: string, mounts: MountEntry[], depth: number): Promise<{ units: string[]; label: string }> {
  const sys = await fsp.realpath(path.join(SYS_BLOCK, majMin)).catch(() => null);
  if (!sys || depth > 8) return { units: [`block:${majMin}`], label: majMin };
  const name = path.basename(sys);
  if ((await read(path.join(sys, 'partition'))) !== null) {
    const disk = path.dirname(sys);
    const dev = await read(path.join(disk, 'dev'));
    if (dev) {
      const whole = await blockUnits(dev, mounts, depth + 1);
      return { units: whole.units, label: `${name} (partition of ${whole.label})` };
    }
  }
  const backing = await read(path.join(sys, 'loop', 'backing_file'));
  if (backing) {
    const under = await probeDevice(backing.replace(/ \(deleted\)$/, ''), mounts, depth + 1).catch(() => null);
    if (under) return { units: under.units, label: `${name} -> ${under.label}` };
    // Its backing file is out of reach (another mount namespace, deleted): the loop device alone, said so.
    return { units: [`block:${name}`], label: `${name} (backing file ${backing} not reachable)` };
  }
  const slaves = await fsp.readdir(path.join(sys, 'slaves')).catch(() => [] as string[]);
  if (slaves.length) {
    const members = await Promise.all(slaves.map(async (s) => {
      const dev = await read(path.join(sys, 'slaves', s, 'dev'));
      return dev ? blockUnits(dev, mounts, depth + 1) : { units: [`block:${s}`], label: s };
    }));
    return { units: [...new Set(members.flatMap((m) => m.units))].sort(), label: `${name} (${members.map((m) => m.label).join(', ')})` };
  }
  return { units: [`block:${name}`], label: name };
}

/** The mount `p` lies in: the longest mount point that is a prefix of it (the last one mounted there). */
function mountOf(p: string, mounts: MountEntry[]): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const inside = m.mountPoint === '/' || p === m.mountPoint || p.startsWith(`${m.mountPoint}/`);
    if (inside && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/**
 * Finds the devices behind a directory (or file): its filesystem's device from stat, or, for
 * filesystems whose device number is anonymous (btrfs subvolumes, zfs, tmpfs, overlay), the
 * device its mount names.
 */
export async function probeDevice(p: string, mounts?: MountEntry[], depth = 0): Promise<DeviceProbe> {
  const all = mounts ?? (await readMounts());
  const real = await fsp.realpath(p);
  const st = await fsp.stat(real);
  const dev = devName(st.dev);
  if (!dev.startsWith('0:')) return { ...(await blockUnits(dev, all, depth)), fs: `dev:${dev}` };
  const m = mountOf(real, all);
  if (m?.source.startsWith('/dev/')) {
    const src = await fsp.stat(m.source).catch(() => null);
    if (src?.isBlockDevice()) {
      const under = devName(src.rdev);
      return { ...(await blockUnits(under, all, depth)), fs: `dev:${under}` };
    }
  }
  if (m?.fstype === 'zfs') {
    const zpool = m.source.split('/')[0];
    // The datasets of a zpool share its space.
    return { units: [`zfs:${zpool}`], label: `zfs pool ${zpool}`, fs: `zfs:${zpool}` };
  }
  return { units: [`fs:${dev}`], label: `${m?.fstype ?? 'filesystem'} ${dev}`, fs: `dev:${dev}` };
}

/** A disk as failure domains see it. */
export interface DomainMember {
  id: string;
  /** Set by the administrator (`--failure-domain`): replaces what was detected. */
  override: string | null;
  probe: DeviceProbe | null;
}

/**
 * Groups disks into failure domains: disks that share a physical unit (transitively) form one; an
 * administrator's name puts a disk in that named domain instead. Returns the domain of each disk, as
 * a key (`block:vda`, `named:rack-a`); `domainLabel` gives its name for people.
 */
export function groupDomains(disks: DomainMember[]): Map<string, string> {
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r) as string;
    parent.set(x, r);
    return r;
  };
  const union = (a: string, b: string) => {
    const [ra, rb] = [find(a), find(b)];
    if (ra !== rb) parent.set(ra < rb ? rb : ra, ra < rb ? ra : rb);
  };
  const keys = new Map<string, string[]>();
  for (const d of disks) {
    const k = d.override !== null ? [`named:${d.override}`] : d.probe ? d.probe.units : [`disk:${d.id}`];
    keys.set(d.id, k);
    for (const u of k) if (!parent.has(u)) parent.set(u, u);
    for (const u of k.slice(1)) union(k[0], u);
  }
  const out = new Map<string, string>();
  for (const [id, k] of keys) out.set(id, find(k[0]));
  return out;
}

/** `block:vda` -> `vda`; `named:rack-a` -> `rack-a`. */
export function domainLabel(key: string): string {
  return key.replace(/^(block|named|zfs|fs|disk):/, '');
}

/** Why `name` cannot name a failure domain, or null. */
export function failureDomainProblem(name: string): string | null {
  if (name === 'auto') return "failure domain 'auto' is reserved: it means 'found from the devices' (set-failure-domain DISK auto)";
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name) ? null : `failure domain '${name.slice(0, 80)}' must be 1 to 63 letters, digits, dots, dashes or underscores, starting with a letter or digit`;
}

/** A disk already in a pool, as sharedWithNew needs it. */
export interface PoolDisk { id: string; path: string; domainOverride: string | null }

/**
 * The domain a new disk at `p` (with the administrator's name `override`, if any) would share with
 * `disks`, and which of them: null when it is a domain of its own.
 */
export async function sharedWithNew<D extends PoolDisk>(disks: D[], p: string, override: string | null): Promise<{ domain: string; disks: D[] } | null> {
  const mounts = await readMounts();
  const [probe, ...probes] = await Promise.all([p, ...disks.map((d) => d.path)].map((x) => probeDevice(x, mounts).catch(() => null)));
  const NEW = '\0new';
  const domains = groupDomains([...disks.map((d, i) => ({ id: d.id, override: d.domainOverride, probe: probes[i] })), { id: NEW, override, probe }]);
  const mine = domains.get(NEW) as string;
  const together = disks.filter((d) => domains.get(d.id) === mine);
  return together.length ? { domain: domainLabel(mine), disks: together } : null;
}
