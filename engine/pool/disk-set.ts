import { promises as fsp } from 'node:fs';
import type { DiskRow, MetadataStore } from '../metadata/store.js';
import { isReadable, isWritable, type DiskHealth } from './disk-health.js';
import { groupDomains, probeDevice } from './failure-domain.js';
import { readMounts } from '../util/mountinfo.js';

export interface Disk {
  id: string;
  path: string;
  tier: string;
  /** Operator cap in bytes, or null to use the whole filesystem. */
  cap: number | null;
  health: DiskHealth;
  healthReason: string;
  healthChangedAt: number;
  /** Bytes of committed fragments on this disk (from metadata). */
  used: number;
  /**
   * Free bytes of the filesystem under the disk: the last statfs, less what was committed on that
   * filesystem since, plus what the garbage reaper deleted (see DiskSet.noteUsed).
   */
  fsFree: number;
  fsTotal: number;
  /** Bytes held on this disk for data accepted but not committed yet (see data/reservation.ts). */
  reserved: number;
  /** `reserved` summed over every disk on this disk's filesystem: they share its free space. */
  fsReserved: number;
  readErrors: number;
  writeErrors: number;
  checksumErrors: number;
  addedAt: number;
  /** The failure domain (see failure-domain.ts): two fragments of one extent never share one. */
  domain: string;
  /** Set by the administrator (`--failure-domain`), or null: detected from the devices. */
  domainOverride: string | null;
  /** How the disk reaches its devices, for people. */
  device: string;
  /** The filesystem under the disk: disks on one filesystem share its free space. */
  fs: string;
  /** Why its domain may not be the whole truth (see DeviceProbe.warning), or null. */
  deviceWarning: string | null;
}

export function diskCapacity(d: Disk): number {
  return d.cap ?? d.fsTotal;
}

/** Bytes a new fragment may still use on this disk. */
export function diskFree(d: Disk): number {
  const byCap = d.cap === null ? Infinity : d.cap - d.used - d.reserved;
  return Math.max(0, Math.min(byCap, d.fsFree - d.fsReserved));
}

/** The block size space is counted in: a fragment file takes whole blocks of its filesystem. */
export const FS_BLOCK = 4096;

/** Bytes a fragment file of `size` bytes takes on its filesystem (whole blocks). */
export function onDisk(size: number): number {
  return Math.ceil(size / FS_BLOCK) * FS_BLOCK;
}

/** What a device probe found for a disk (see DiskSet.refreshDomains). */
interface Probed {
  domain: string;
  device: string;
  fs: string;
  deviceWarning: string | null;
}

function fromRow(r: DiskRow, prev: Disk | undefined, probed: Probed | undefined): Disk {
  return {
    id: r.id,
    path: r.path,
    tier: r.tier,
    cap: r.capacity,
    health: r.health as DiskHealth,
    healthReason: r.health_reason,
    healthChangedAt: r.health_changed_at,
    used: r.used,
    fsFree: prev?.fsFree ?? 0,
    fsTotal: prev?.fsTotal ?? 0,
    reserved: prev?.reserved ?? 0,
    fsReserved: prev?.fsReserved ?? 0,
    readErrors: r.read_errors,
    writeErrors: r.write_errors,
    checksumErrors: r.checksum_errors,
    addedAt: r.added_at,
    // Until the devices are probed, each disk is a domain of its own and a filesystem of its own.
    domain: probed?.domain ?? (r.failure_domain !== null ? `named:${r.failure_domain}` : `disk:${r.id}`),
    domainOverride: r.failure_domain,
    device: probed?.device ?? 'not probed yet',
    fs: probed?.fs ?? `disk:${r.id}`,
    deviceWarning: probed?.deviceWarning ?? null,
  };
}

/** The pool's disks as the data path sees them: metadata rows plus live free-space figures. */
export class DiskSet {
  private byId = new Map<string, Disk>();

  constructor(private readonly store: MetadataStore) {
    this.reload();
  }

  /** Probe results by disk id: they outlive the Disk objects a reload replaces. */
  private probed = new Map<string, Probed>();

  reload(): void {
    const next = new Map<string, Disk>();
    for (const r of this.store.disks()) next.set(r.id, fromRow(r, this.byId.get(r.id), this.probed.get(r.id)));
    this.byId = next;
    this.countWritable();
    this.sumReserved();
  }

  /** Keeps each disk's `fsReserved` the sum over the disks of its filesystem. */
  private sumReserved(): void {
    const byFs = new Map<string, number>();
    for (const d of this.byId.values()) byFs.set(d.fs, (byFs.get(d.fs) ?? 0) + d.reserved);
    for (const d of this.byId.values()) d.fsReserved = byFs.get(d.fs) ?? 0;
  }

  /**
   * Holds (`bytes` > 0) or gives back (< 0) space on a disk, by id: the Disk objects are replaced
   * whenever the rows are reloaded (a health change), and a count kept on a replaced object is lost.
   */
  reserve(id: string, bytes: number): void {
    const d = this.byId.get(id);
    if (!d) return;
    d.reserved = Math.max(0, d.reserved + bytes);
    for (const x of this.byId.values()) if (x.fs === d.fs) x.fsReserved = Math.max(0, x.fsReserved + bytes);
  }

  private countWritable(): void {
    const w = this.writable();
    this.writableCached = w.length;
    this.writableDomainsCached = new Set(w.map((d) => d.domain)).size;
  }

  all(): Disk[] {
    return [...this.byId.values()];
  }
  get(id: string): Disk | undefined {
    return this.byId.get(id);
  }
  writable(): Disk[] {
    return this.all().filter((d) => isWritable(d.health));
  }
  /** How many disks take new fragments; asked on every FUSE write, so counted once per reload. */
  get writableCount(): number {
    return this.writableCached;
  }
  private writableCached = 0;
  /** How many failure domains the disks that take new fragments are in; asked on every FUSE write too. */
  get writableDomainCount(): number {
    return this.writableDomainsCached;
  }
  private writableDomainsCached = 0;
  readable(id: string): boolean {
    const d = this.byId.get(id);
    return d !== undefined && isReadable(d.health);
  }

  /** Bytes committed on each filesystem since the pool was opened (see refreshSpace). */
  private committed = new Map<string, number>();

  /**
   * Asks each disk's filesystem for its free space. Commits made while statfs was under way are
   * taken off its answer (it may not have seen them), and deletions made meanwhile are not added
   * (it may have seen them): an answer can be short of the truth until the next one, never over it.
   */
  async refreshSpace(): Promise<void> {
    const marks = new Map(this.committed);
    await Promise.all(
      this.all().map(async ({ id, path }) => {
        let free = 0;
        let total: number | null = null;
        try {
          const s = await fsp.statfs(path);
          // No inodes left is no room either (a filesystem that counts none, btrfs, says files = 0).
          free = s.files > 0 && s.ffree === 0 ? 0 : s.bavail * s.bsize;
          total = s.blocks * s.bsize;
        } catch {
          /* unreachable: no room */
        }
        const d = this.byId.get(id); // the disk as it is now: a reload may have replaced the object
        if (!d) return;
        d.fsFree = Math.max(0, free - ((this.committed.get(d.fs) ?? 0) - (marks.get(d.fs) ?? 0)));
        if (total !== null) d.fsTotal = total;
      }),
    );
    this.refreshedAt = Date.now();
  }

  /** When refreshSpace last answered (ms since the epoch). */
  refreshedAt = 0;
  private refreshing = false;

  /**
   * A statfs in the background, at most once a second, when a filesystem of these disks is getting
   * full: what was counted since the last one may be off (another program writing there).
   */
  refreshIfLow(ids: string[]): void {
    if (this.refreshing || Date.now() - this.refreshedAt < 1000) return;
    const low = ids.some((id) => {
      const d = this.byId.get(id);
      return d !== undefined && d.fsFree - d.fsReserved < d.fsTotal / 10;
    });
    if (!low) return;
    this.refreshing = true;
    this.refreshSpace()
      .catch(() => undefined)
      .finally(() => {
        this.refreshing = false;
      });
  }

  /** A fragment write found the disk's filesystem full: no room there until statfs says otherwise. */
  markFull(id: string): void {
    const d = this.byId.get(id);
    if (d) for (const x of this.byId.values()) if (x.fs === d.fs) x.fsFree = 0;
  }

  /**
   * Finds the devices behind every disk and groups the disks into failure domains. A disk that cannot
   * be probed (gone, unreadable) is a domain and a filesystem of its own.
   */
  async refreshDomains(): Promise<void> {
    const mounts = await readMounts();
    const disks = this.all();
    const probes = await Promise.all(disks.map((d) => probeDevice(d.path, mounts).catch(() => null)));
    const domains = groupDomains(disks.map((d, i) => ({ id: d.id, override: d.domainOverride, probe: probes[i] })));
    this.probed = new Map(
      disks.map((d, i) => [
        d.id,
        {
          domain: domains.get(d.id) as string,
          device: probes[i]?.label ?? 'unknown (not reachable)',
          fs: probes[i]?.fs ?? `disk:${d.id}`,
          // A named domain is the administrator's word: a device that cannot be followed does not matter then.
          deviceWarning:
            d.domainOverride !== null
              ? null
              : probes[i]
                ? (probes[i]?.warning ?? null)
                : 'its devices could not be probed: its failure domain is assumed separate',
        },
      ]),
    );
    // The disks as they are now (a reload may have replaced the objects while the probes ran).
    for (const d of this.all()) Object.assign(d, this.probed.get(d.id) ?? {});
    this.countWritable();
    this.sumReserved();
  }

  /**
   * Applies a committed change in used bytes to the in-memory view (metadata already has it): a
   * fragment committed (delta > 0) or deleted (< 0). The free space of its filesystem follows, in
   * whole blocks, for every disk on it, so placement and reservations need no statfs per write.
   */
  noteUsed(id: string, delta: number): void {
    const d = this.byId.get(id);
    if (!d) return;
    d.used = Math.max(0, d.used + delta);
    const blocks = Math.sign(delta) * onDisk(Math.abs(delta));
    if (blocks > 0) this.committed.set(d.fs, (this.committed.get(d.fs) ?? 0) + blocks);
    for (const x of this.byId.values()) if (x.fs === d.fs) x.fsFree = Math.max(0, x.fsFree - blocks);
  }
}
