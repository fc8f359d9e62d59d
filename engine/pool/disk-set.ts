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
  /** Free bytes of the filesystem under the disk, from the last statfs. */
  fsFree: number;
  fsTotal: number;
  /** Bytes placed on this disk by writes that have not committed yet. */
  reserved: number;
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
  return Math.max(0, Math.min(byCap, d.fsFree - d.reserved));
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

  async refreshSpace(): Promise<void> {
    await Promise.all(
      this.all().map(async (d) => {
        try {
          const s = await fsp.statfs(d.path);
          d.fsFree = s.bavail * s.bsize;
          d.fsTotal = s.blocks * s.bsize;
        } catch {
          d.fsFree = 0;
        }
      }),
    );
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
  }

  /** Applies a committed change in used bytes to the in-memory view (metadata already has it). */
  noteUsed(id: string, delta: number): void {
    const d = this.byId.get(id);
    if (d) d.used = Math.max(0, d.used + delta);
  }
}
