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
  /** Why the domain found may not be the whole truth (a device that could not be followed, memory that a reboot empties). */
  warning?: string;
}

/** Filesystems in memory: a reboot empties them. */
const VOLATILE = new Set(['tmpfs', 'ramfs']);
/** Filesystems whose anonymous device number is the filesystem itself, with nothing below it to follow. */
const OWN_DEVICE = new Set([...VOLATILE, 'hugetlbfs']);

const SYS_BLOCK = '/sys/dev/block';

const devName = (dev: number): string => `${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}`;

async function read(p: string): Promise<string | null> {
  return fsp.readFile(p, 'utf8').then(
    (s) => s.trim(),
    () => null,
  );
}

/**
 * The physical units behind block device MAJ:MIN, following partitions to their disk, loop devices
 * to the filesystem of their backing file, and device-mapper and md devices to their members.
 */
async function blockUnits(
  majMin: string,
  mounts: MountEntry[],
  depth: number,
): Promise<{ units: string[]; label: string; warning?: string }> {
  const sys = await fsp.realpath(path.join(SYS_BLOCK, majMin)).catch(() => null);
  if (!sys || depth > 8) return { units: [`block:${majMin}`], label: majMin };
  const name = path.basename(sys);
  if ((await read(path.join(sys, 'partition'))) !== null) {
    const disk = path.dirname(sys);
    const dev = await read(path.join(disk, 'dev'));
    if (dev) {
      const whole = await blockUnits(dev, mounts, depth + 1);
      return { units: whole.units, label: `${name} (partition of ${whole.label})`, warning: whole.warning };
    }
  }
  const backing = await read(path.join(sys, 'loop', 'backing_file'));
  if (backing) {
    const under = await probeDevice(backing.replace(/ \(deleted\)$/, ''), mounts, depth + 1).catch(() => null);
    if (under) return { units: under.units, label: `${name} -> ${under.label}`, warning: under.warning };
    // Its backing file is out of reach (another mount namespace, deleted): the loop device alone, said so.
    return {
      units: [`block:${name}`],
      label: `${name} (backing file ${backing} not reachable)`,
      warning: `the file behind ${name} (${backing}) cannot be followed: its failure domain is assumed separate`,
    };
  }
  const slaves = await fsp.readdir(path.join(sys, 'slaves')).catch(() => [] as string[]);
  if (slaves.length) {
    const members = await Promise.all(
      slaves.map(async (s): Promise<{ units: string[]; label: string; warning?: string }> => {
        const dev = await read(path.join(sys, 'slaves', s, 'dev'));
        return dev ? blockUnits(dev, mounts, depth + 1) : { units: [`block:${s}`], label: s };
      }),
    );
    return {
      units: [...new Set(members.flatMap((m) => m.units))].sort(),
      label: `${name} (${members.map((m) => m.label).join(', ')})`,
      warning: members.find((m) => m.warning)?.warning,
    };
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
  // A block device itself (a loop device's backing can be one): the device it is.
  if (st.isBlockDevice()) return { ...(await blockUnits(devName(st.rdev), all, depth)), fs: `dev:${devName(st.rdev)}` };
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
  if (m?.fstype === 'overlay' && depth < 8) return overlayUnits(m, all, depth);
  const label = `${m?.fstype ?? 'filesystem'} ${dev}`;
  if (m && VOLATILE.has(m.fstype))
    return { units: [`fs:${dev}`], label, fs: `dev:${dev}`, warning: `it is on ${m.fstype}, in memory: a reboot empties it` };
  if (m && OWN_DEVICE.has(m.fstype)) return { units: [`fs:${dev}`], label, fs: `dev:${dev}` };
  return {
    units: [`fs:${dev}`],
    label,
    fs: `dev:${dev}`,
    warning: `the devices under its ${m?.fstype ?? 'unknown'} filesystem cannot be followed: its failure domain is assumed separate`,
  };
}

/**
 * An overlay's layers: the upper directory (where writes land, so its filesystem is the one whose
 * space counts) and every lower one, each followed to its devices.
 */
async function overlayUnits(m: MountEntry, all: MountEntry[], depth: number): Promise<DeviceProbe> {
  const opt = (key: string) => m.superOptions.find((o) => o.startsWith(`${key}=`))?.slice(key.length + 1);
  const upper = opt('upperdir');
  const lowers = (opt('lowerdir') ?? '').split(':').filter(Boolean);
  const layers = await Promise.all([...(upper ? [upper] : []), ...lowers].map((l) => probeDevice(l, all, depth + 1).catch(() => null)));
  const found = layers.filter((l): l is DeviceProbe => l !== null);
  if (!found.length)
    return {
      units: [`fs:${m.dev}`],
      label: `overlay ${m.dev}`,
      fs: `dev:${m.dev}`,
      warning: 'the layers of its overlay cannot be followed: its failure domain is assumed separate',
    };
  return {
    units: [...new Set(found.flatMap((l) => l.units))].sort(),
    label: `overlay (${found.map((l) => l.label).join('; ')})`,
    fs: found[0].fs,
    warning: found.length < layers.length ? 'some layers of its overlay cannot be followed' : found.find((l) => l.warning)?.warning,
  };
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
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)
    ? null
    : `failure domain '${name.slice(0, 80)}' must be 1 to 63 letters, digits, dots, dashes or underscores, starting with a letter or digit`;
}

/** A disk already in a pool, as sharedWithNew needs it. */
export interface PoolDisk {
  id: string;
  path: string;
  domainOverride: string | null;
}

/**
 * The domain a new disk at `p` (with the administrator's name `override`, if any) would share with
 * `disks`, and which of them: null when it is a domain of its own.
 */
export async function sharedWithNew<D extends PoolDisk>(
  disks: D[],
  p: string,
  override: string | null,
): Promise<{ domain: string; disks: D[] } | null> {
  const mounts = await readMounts();
  const [probe, ...probes] = await Promise.all([p, ...disks.map((d) => d.path)].map((x) => probeDevice(x, mounts).catch(() => null)));
  const NEW = '\0new';
  const domains = groupDomains([
    ...disks.map((d, i) => ({ id: d.id, override: d.domainOverride, probe: probes[i] })),
    { id: NEW, override, probe },
  ]);
  const mine = domains.get(NEW) as string;
  const together = disks.filter((d) => domains.get(d.id) === mine);
  return together.length ? { domain: domainLabel(mine), disks: together } : null;
}
