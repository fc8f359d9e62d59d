import fsp from 'node:fs/promises';
import type { ExtentRow, FragmentRow, MetadataStore } from '../metadata/store.js';
import type { DiskSet } from './disk-set.js';
import { fragmentPath } from './layout.js';

/** Where the fragments of one extent version are about to be written: one disk per slot. */
export type Placement = { slot: number; disk: string }[];

/** What the protocol records in the metadata. */
export type VersionMetadata = Pick<
  MetadataStore,
  | 'beginWrite'
  | 'commitExtent'
  | 'discardIntentFragments'
  | 'intents'
  | 'beginRepair'
  | 'commitRelocation'
  | 'repairIntents'
  | 'dropRepairIntent'
  | 'fragment'
  | 'orphanInodes'
  | 'freeInode'
  | 'tx'
>;

/** What the protocol needs besides the metadata. */
export interface VersionHooks {
  /** Frees fragments that became garbage (in the background). */
  reapGarbage(): Promise<void>;
  /** The metadata changed: copy it to the disks' mirrors soon. */
  scheduleMirror(): void;
}

/**
 * The extent-version write protocol, from intent to commit to crash recovery. An extent is never
 * overwritten in place: a new version's fragments are written under a fresh extent id, then made
 * current in one metadata transaction; a crash in between leaves the old version current.
 *
 * 1. `begin(placement)`: an intent row records where the fragments will go (and allocates the id).
 * 2. The caller writes and syncs the fragment files (data/extent-store.ts).
 * 3. `commit(...)`: one transaction makes the version current, closes the intent and turns the old
 *    version's fragments into garbage; or `abandon(...)`: the written fragments become garbage.
 * 4. `recover()` at open: an intent still open is a write that never committed; its fragments are
 *    garbage. The garbage reaper deletes the files.
 *
 * A rebuilt fragment placed on another disk follows the same shape: `beginRepair`, write,
 * `commitRepair`; an open repair intent at open is an orphan copy.
 */
export class ExtentVersions {
  constructor(
    private readonly meta: VersionMetadata,
    private readonly disks: DiskSet,
    private readonly hooks: VersionHooks,
  ) {}

  begin(placement: Placement): number {
    return this.meta.beginWrite(placement, Date.now());
  }

  /** The version's fragment writes failed: whatever reached the disks is garbage. */
  abandon(eid: number, placement: Placement): void {
    this.meta.discardIntentFragments(eid, placement);
    void this.hooks.reapGarbage();
  }

  /**
   * Makes a written version current. `fileSize`: the size the file has at least once this version
   * is current; `mtime`: the file's modification time as the writer set it. False when the file
   * no longer exists (the fragments are then garbage).
   */
  commit(extent: ExtentRow, fragments: FragmentRow[], fileSize: number, mtime: number): boolean {
    const committed = this.meta.commitExtent(extent, fragments, fileSize, mtime, Date.now());
    for (const f of fragments) this.disks.noteUsed(f.disk, f.size);
    this.hooks.scheduleMirror();
    void this.hooks.reapGarbage();
    return committed;
  }

  /** A replacement for fragment (eid, slot) is about to be written on `disk`. */
  beginRepair(eid: number, slot: number, disk: string): void {
    this.meta.beginRepair(eid, slot, disk, Date.now());
  }

  /** Points the fragment at its new copy if it still lives on `from`; false when the extent changed meanwhile. */
  commitRepair(eid: number, slot: number, from: string, to: string, size: number): boolean {
    if (!this.meta.commitRelocation(eid, slot, from, to, size)) return false;
    this.disks.noteUsed(to, size);
    return true;
  }

  /** Finishes what a crash interrupted: uncommitted versions and repairs, unlinked inodes still held. */
  async recover(): Promise<void> {
    for (const intent of this.meta.intents()) this.meta.discardIntentFragments(intent.eid, intent.placement);
    // A rebuilt fragment whose relocation never committed is an orphan copy: delete it.
    for (const r of this.meta.repairIntents()) {
      const row = this.meta.fragment(r.eid, r.slot);
      const d = this.disks.get(r.disk);
      if (d && row?.disk !== r.disk) await fsp.rm(fragmentPath(d.path, r.eid, r.slot), { force: true });
      this.meta.dropRepairIntent(r.eid, r.slot, r.disk);
    }
    const orphans = this.meta.orphanInodes();
    if (orphans.length) this.meta.tx(() => orphans.forEach((ino) => this.meta.freeInode(ino)));
    await this.hooks.reapGarbage();
  }
}
