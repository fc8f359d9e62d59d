import type { MetadataStore } from '../metadata/store.js';
import type { VolumeRecord } from '../metadata/volume-table.js';
import { fsError } from '../util/errors.js';

/** A volume as the filesystem enforces it: its row, with the inode limit it is held to. */
export interface Quota extends VolumeRecord {
  inodeLimit: number;
}

/** Bytes of capacity per inode a volume gets when none is asked for: ext4's default ratio. */
const BYTES_PER_INODE = 16 * 1024;
/** ... but never fewer than this, so a small volume still holds a source tree. */
const MIN_INODES = 4096;
/** Most inodes a volume may ask for: each costs a metadata row on the node's own disk. */
export const MAX_INODES = 2 ** 32;

export function defaultInodeLimit(capacity: number): number {
  return Math.min(MAX_INODES, Math.max(MIN_INODES, Math.floor(capacity / BYTES_PER_INODE)));
}

/** What quota accounting reads from the metadata. */
export type QuotaMetadata = Pick<MetadataStore, 'volumes' | 'subtreeUsage' | 'getMeta' | 'setMeta' | 'tx'>;

interface Usage {
  bytes: number;
  inodes: number;
  dirty: boolean;
}

/**
 * Quota accounting for volumes (top-level directories with a capacity and an inode limit): usage is
 * counted from the metadata when first needed and then kept up to date by the write path. Volume
 * lifecycle (create, delete, expand) lives above the filesystem, in volumes/, and calls reload().
 */
export class Quotas {
  private readonly usage = new Map<string, Usage>();
  private rows = new Map<string, Quota>();
  private byRoot = new Map<number, Quota>();

  /** `openOrphans(volume)`: unlinked files still open in it, which hold space until closed. */
  constructor(
    private readonly meta: QuotaMetadata,
    private readonly openOrphans: (volume: string) => { bytes: number; inodes: number },
  ) {
    this.grandfatherInodeLimits();
    this.reload();
  }

  /**
   * Volumes made before inode limits existed must not find themselves past one: those that hold more
   * than half of their default get twice what they hold (once per pool).
   */
  private grandfatherInodeLimits(): void {
    const meta = this.meta;
    if (meta.getMeta('inode_limits') === '1') return;
    meta.tx(() => {
      for (const r of meta.volumes.all().filter((v) => v.inodeLimit === null)) {
        const held = meta.subtreeUsage(r.ino).inodes;
        if (held * 2 > defaultInodeLimit(r.capacity)) meta.volumes.setInodeLimit(r.name, Math.min(MAX_INODES, held * 2));
      }
      meta.setMeta('inode_limits', '1');
    });
  }

  /** Reads the volume rows again after volume lifecycle changed them; a removed volume's count goes. */
  reload(): void {
    this.rows = new Map(this.meta.volumes.all().map((r) => [r.name, { ...r, inodeLimit: r.inodeLimit ?? defaultInodeLimit(r.capacity) }]));
    this.byRoot = new Map([...this.rows.values()].map((q) => [q.ino, q]));
    for (const name of this.usage.keys()) if (!this.rows.has(name)) this.usage.delete(name);
  }

  list(): Quota[] {
    return [...this.rows.values()];
  }

  get(name: string): Quota | undefined {
    return this.rows.get(name);
  }

  /** The volume a pool path lies in (its first component), if that is a volume. */
  of(path: string): Quota | undefined {
    const first = path.split('/').find((c) => c !== '');
    return first === undefined ? undefined : this.rows.get(first);
  }

  /** The volume whose root directory is inode `ino`, if that is one. */
  ofRoot(ino: number): Quota | undefined {
    return this.byRoot.get(ino);
  }

  /** A new volume starts empty; it is counted from the metadata when first needed (its root's policy attribute too). */
  started(name: string): void {
    this.usage.set(name, { bytes: 0, inodes: 1, dirty: true });
  }

  /** Bytes (apparent file sizes and extended attributes) and inodes in a volume. */
  usageOf(name: string): { bytes: number; inodes: number } {
    let u = this.usage.get(name);
    if (!u || u.dirty) {
      const v = this.rows.get(name);
      if (!v) return { bytes: 0, inodes: 0 };
      const tree = this.meta.subtreeUsage(v.ino);
      const orphans = this.openOrphans(name);
      const r = { bytes: tree.bytes + orphans.bytes, inodes: tree.inodes + orphans.inodes };
      // Files open for writing may hold growth not yet flushed to metadata.
      u = { bytes: Math.max(r.bytes, u?.dirty ? 0 : (u?.bytes ?? 0)), inodes: r.inodes, dirty: false };
      this.usage.set(name, u);
    }
    return { bytes: u.bytes, inodes: u.inodes };
  }

  /** Called before a file in volume `name` grows by `bytes`: refuses with EDQUOT past the capacity. */
  charge(name: string, bytes: number): void {
    const v = this.rows.get(name);
    if (!v || bytes <= 0) return;
    const used = this.usageOf(name).bytes;
    if (used + bytes > v.capacity) {
      throw fsError('EDQUOT', `volume ${name} holds ${used} of ${v.capacity} bytes; ${bytes} more would pass its capacity`);
    }
    (this.usage.get(name) as Usage).bytes = used + bytes;
  }

  /** Called before an inode is made in volume `name`: refuses with EDQUOT at its inode limit. */
  chargeInode(name: string): void {
    const v = this.rows.get(name);
    if (!v) return;
    const used = this.usageOf(name).inodes;
    if (used + 1 > v.inodeLimit) throw fsError('EDQUOT', `volume ${name} holds ${used} of its ${v.inodeLimit} inodes`);
    (this.usage.get(name) as Usage).inodes = used + 1;
  }

  /** Something shrank or moved (truncate, unlink, rename): count again when next needed. */
  recount(name: string): void {
    const u = this.usage.get(name);
    if (u) u.dirty = true;
  }
}
