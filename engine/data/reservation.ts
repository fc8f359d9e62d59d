import { isWritable } from '../pool/disk-health.js';
import { diskFree, FS_BLOCK, onDisk, type Disk, type DiskSet } from '../pool/disk-set.js';

/**
 * Bytes held for a fragment beyond its whole blocks: the blocks of its inode's extent tree and its
 * directory entry, which the filesystem takes too. Held while the fragment is being written, not
 * counted once it is committed (statfs then says what it took).
 */
export const FRAGMENT_SLACK = FS_BLOCK;

/** Bytes held on a disk for one fragment of `size` bytes until it is committed. */
export function footprint(size: number): number {
  return onDisk(size) + FRAGMENT_SLACK;
}

/**
 * Space held for the next version of one extent, from the moment a write into it is accepted until
 * that version is committed or dropped: `perDisk` bytes on each of `disks` (slot order), disks that
 * placement chose as it would for the version itself (distinct disks and failure domains, with room).
 * The flush writes the fragments there when it can, so an accepted write has room waiting for it.
 * The counts live in the DiskSet, by disk id (see DiskSet.reserve).
 */
export class Reservation {
  private held = true;

  constructor(
    private readonly set: DiskSet,
    public disks: string[],
    public perDisk: number,
  ) {
    for (const id of disks) set.reserve(id, perDisk);
  }

  get active(): boolean {
    return this.held;
  }

  /** Grows to `perDisk` on the same disks when every one of them still takes new data and has the room. */
  tryGrow(perDisk: number): boolean {
    if (!this.held) return false;
    const more = perDisk - this.perDisk;
    if (more <= 0) return true;
    for (const id of this.disks) {
      const d = this.set.get(id);
      if (!d || !isWritable(d.health) || diskFree(d) < more) return false;
    }
    for (const id of this.disks) this.set.reserve(id, more);
    this.perDisk = perDisk;
    return true;
  }

  /**
   * Moves the holding to `disks` chosen by `choose` (called with this reservation's space given back,
   * so its own bytes count as free), `perDisk` bytes each. When `choose` throws, the old holding stays.
   */
  move(perDisk: number, choose: () => Disk[]): void {
    if (this.held) for (const id of this.disks) this.set.reserve(id, -this.perDisk);
    let chosen: Disk[];
    try {
      chosen = choose();
    } catch (err) {
      if (this.held) for (const id of this.disks) this.set.reserve(id, this.perDisk);
      throw err;
    }
    this.disks = chosen.map((d) => d.id);
    this.perDisk = perDisk;
    this.held = true;
    for (const id of this.disks) this.set.reserve(id, perDisk);
  }

  /** Gives the space back (the version was committed, or dropped). Safe to call more than once. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    for (const id of this.disks) this.set.reserve(id, -this.perDisk);
  }
}
