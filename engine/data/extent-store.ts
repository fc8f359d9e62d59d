import { diskIo } from '../observability/disk-io.js';
import path from 'node:path';
import type { ChecksumAlgorithm } from '../integrity/checksum.js';
import { BufferPool } from './buffer-pool.js';
import { FragmentWorkers } from './fragment-workers.js';
import { rename, rm } from 'node:fs/promises';
import { syncFile } from './fragment-io.js';
import type { ExtentRow, FragmentRow, MetadataStore } from '../metadata/store.js';
import { chooseDisks, type PlacementOptions } from '../pool/placement.js';
import { domainLabel } from '../pool/failure-domain.js';
import { fragmentPath } from '../pool/layout.js';
import type { Disk, DiskSet } from '../pool/disk-set.js';
import { isWritable } from '../pool/disk-health.js';
import type { ExtentVersions } from '../pool/extent-versions.js';
import type { DiskErrorKind, HealthThresholds } from '../pool/health-policy.js';
import type { PoolSettings } from '../pool/pool.js';
import { decodeExtent, encodeExtent, fragmentSize } from '../redundancy/codec.js';
import { formatPolicy, fragmentCount, parsePolicy, type RedundancyPolicy } from '../redundancy/policy.js';
import { fsError, FsError, isNodeError } from '../util/errors.js';
import { footprint, Reservation } from './reservation.js';

/** Errors of this process, not of a disk: they never count against a disk's health. */
const PROCESS_LIMITS = new Set(['EMFILE', 'ENFILE', 'ENOMEM']);

const policyCache = new Map<string, RedundancyPolicy>();
export function policyOf(text: string): RedundancyPolicy {
  let p = policyCache.get(text);
  if (!p) {
    p = parsePolicy(text);
    policyCache.set(text, p);
  }
  return p;
}

export interface WrittenExtent {
  extent: ExtentRow;
  fragments: FragmentRow[];
  files: string[];
}

export interface ReadCounters {
  fragmentErrors: number;
  reconstructions: number;
}

/** What the extent store needs of its pool (a Pool provides it). */
export interface ExtentStoreHost {
  readonly name: string;
  readonly settings: Pick<PoolSettings, 'extentSize' | 'checksum'>;
  readonly disks: DiskSet;
  readonly store: Pick<MetadataStore, 'fragmentsForRead' | 'recordFragmentError' | 'fragment' | 'clearFragmentError' | 'fragmentErrors'>;
  readonly versions: Pick<ExtentVersions, 'begin' | 'abandon' | 'beginRepair' | 'commitRepair'>;
  readonly thresholds: Pick<HealthThresholds, 'slowIoMs'>;
  sharedDomainsAllowed(): boolean;
  recordDiskError(id: string, kind: DiskErrorKind): void;
}

/**
 * Writes extents as fragments on distinct disks and reads them back, verifying every fragment's
 * checksum and reconstructing around bad or missing ones.
 */
export class ExtentStore {
  readonly counters: ReadCounters = { fragmentErrors: 0, reconstructions: 0 };
  readonly buffers: BufferPool;
  readonly io = new FragmentWorkers();
  private readonly shardPools = new Map<number, BufferPool>();

  constructor(
    private readonly pool: ExtentStoreHost,
    bufferSlots = 128,
  ) {
    this.buffers = new BufferPool(pool.settings.extentSize, bufferSlots);
  }

  /** How fragments are spread: over distinct failure domains, shared only where the pool allows it. */
  private get placement(): PlacementOptions {
    return { sharedDomains: this.pool.sharedDomainsAllowed() };
  }

  close(): Promise<void> {
    return this.io.close();
  }

  /** Disks that take new fragments (of `tier`, when one is named), less those to avoid. */
  private candidates(tier: string | null, avoid?: Set<string>): Disk[] {
    return this.pool.disks.writable().filter((d) => !avoid?.has(d.id) && (tier === null || d.tier === tier));
  }

  /**
   * Holds the space a version of `length` bytes will take under `policy` (every fragment, each on a
   * disk placement would pick), or grows `held` to it: on its own disks when they have the room, on
   * others when they do not. Throws ENOSPC, leaving `held` as it was, when the disks cannot take it.
   */
  reserve(policy: RedundancyPolicy, length: number, tier: string | null, held: Reservation | null): Reservation {
    const perDisk = footprint(fragmentSize(policy, length));
    if (held?.tryGrow(perDisk)) return held;
    const choose = () => chooseDisks(this.candidates(tier), fragmentCount(policy), perDisk, formatPolicy(policy), this.placement);
    const res =
      held ??
      new Reservation(
        this.pool.disks,
        choose().map((d) => d.id),
        perDisk,
      );
    if (held) held.move(perDisk, choose);
    this.pool.disks.refreshIfLow(res.disks);
    return res;
  }

  /**
   * Encodes and stores one extent version. Nothing points at it until the caller commits it.
   * `reserved`: space held for it since its write was accepted; its disks are used when they can
   * still take it. The caller releases it once the version is committed or dropped.
   */
  async write(
    ino: number,
    idx: number,
    data: Buffer,
    policy: RedundancyPolicy,
    tier: string | null = null,
    reserved: Reservation | null = null,
  ): Promise<WrittenExtent> {
    const policyName = formatPolicy(policy);
    const leased: [BufferPool, Buffer][] = [];
    const fragments = await encodeExtent(policy, data, (n) => this.shardBuffer(n, leased));
    // A disk that fails a fragment write is avoided on the next attempt: writes go to the other disks.
    const avoid = new Set<string>();
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.place(ino, idx, data.length, policy, policyName, fragments, avoid, tier, reserved);
        } catch (err) {
          if (!(err instanceof FragmentWriteError) || attempt >= 2) throw err instanceof FragmentWriteError ? err.error : err;
          for (const d of err.disks) avoid.add(d);
          // The reservation names a disk that failed: its space is given back before looking elsewhere.
          reserved?.release();
          try {
            chooseDisks(this.candidates(tier, avoid), fragmentCount(policy), footprint(fragments[0].length), policyName, this.placement);
          } catch {
            throw err.error; // no other disks to retry on: report the write failure itself
          }
        }
      }
    } finally {
      for (const [pool, b] of leased) pool.give(b);
    }
  }

  /** The reserved disks, in slot order, when they can all take this version's fragments; else null. */
  private reservedDisks(reserved: Reservation | null, count: number, size: number, avoid: Set<string>, tier: string | null): Disk[] | null {
    if (!reserved?.active || reserved.disks.length !== count || reserved.perDisk < footprint(size)) return null;
    const disks: Disk[] = [];
    for (const id of reserved.disks) {
      const d = this.pool.disks.get(id);
      if (!d || !isWritable(d.health) || avoid.has(id) || (tier !== null && d.tier !== tier)) return null;
      disks.push(d);
    }
    // Domains are probed again now and then: two of them may have turned out to be one.
    if (!this.placement.sharedDomains && new Set(disks.map((d) => d.domain)).size < count) return null;
    return disks;
  }

  /** Page-aligned, recycled memory for erasure shards of full extents (so they move with O_DIRECT). */
  private shardBuffer(size: number, leased: [BufferPool, Buffer][]): Buffer {
    const pool = this.shardPool(size);
    if (!pool) return Buffer.from(new SharedArrayBuffer(size));
    const b = pool.take();
    leased.push([pool, b]);
    return b;
  }

  private shardPool(size: number): BufferPool | undefined {
    if (size % 4096 !== 0) return undefined;
    let pool = this.shardPools.get(size);
    if (!pool) {
      pool = new BufferPool(size, 32);
      this.shardPools.set(size, pool);
    }
    return pool;
  }

  /** A buffer for reading one fragment: an extent buffer, a shard buffer, or (odd sizes) fresh memory. */
  private fragmentBuffer(size: number): Buffer {
    if (size === this.buffers.size) return this.buffers.take();
    return this.shardPool(size)?.take() ?? Buffer.from(new SharedArrayBuffer(size));
  }

  private giveBack(buf: Buffer): void {
    if (buf.length === this.buffers.size) this.buffers.give(buf);
    else this.shardPools.get(buf.length)?.give(buf);
  }

  private async place(
    ino: number,
    idx: number,
    length: number,
    policy: RedundancyPolicy,
    policyName: string,
    fragments: Buffer[],
    avoid: Set<string>,
    tier: string | null,
    reserved: Reservation | null,
  ): Promise<WrittenExtent> {
    const size = fragments[0].length;
    const held = this.reservedDisks(reserved, fragmentCount(policy), size, avoid, tier);
    // Without a reservation that still fits, placed now and held for the time of the write.
    if (!held) reserved?.release();
    const disks = held ?? chooseDisks(this.candidates(tier, avoid), fragmentCount(policy), footprint(size), policyName, this.placement);
    const transient = held ? 0 : footprint(size);
    for (const d of disks) this.pool.disks.reserve(d.id, transient);
    const placement = disks.map((d, slot) => ({ slot, disk: d.id }));
    const eid = this.pool.versions.begin(placement);
    const alg = this.pool.settings.checksum;
    const files = disks.map((d, slot) => fragmentPath(d.path, eid, slot));
    let sums: string[];
    try {
      // Each fragment is checksummed and written by a fragment I/O thread, one message per fragment.
      // Replicas share one buffer: the first of them computes the sum, the others reuse it.
      const firstOf = fragments.map((f) => fragments.indexOf(f));
      const results = await Promise.allSettled(
        fragments.map(async (f, slot) => {
          const disk = disks[slot];
          const started = performance.now();
          const sum = await this.io.write(files[slot], disk.path, f, firstOf[slot] === slot ? alg : null);
          this.noteIo(disk.id, 'write', performance.now() - started, f.length);
          return sum;
        }),
      );
      const failed = results.findIndex((r) => r.status === 'rejected');
      if (failed >= 0) {
        const reason = (results[failed] as PromiseRejectedResult).reason as unknown;
        results.forEach((r, slot) => {
          if (r.status !== 'rejected') return;
          // A full disk is not a failing one: stop placing there until statfs says otherwise.
          if (isNodeError(r.reason, 'ENOSPC') || isNodeError(r.reason, 'EDQUOT')) this.markFull(disks[slot].id);
          else if (!PROCESS_LIMITS.has((r.reason as NodeJS.ErrnoException | undefined)?.code ?? ''))
            this.pool.recordDiskError(disks[slot].id, isNodeError(r.reason, 'EROFS') ? 'readonly' : 'write');
        });
        this.pool.versions.abandon(eid, placement);
        const failedDisks = results.flatMap((r, slot) => (r.status === 'rejected' ? [disks[slot].id] : []));
        if (isNodeError(reason, 'ENOSPC') || isNodeError(reason, 'EDQUOT')) {
          throw new FragmentWriteError(failedDisks, fsError('ENOSPC', `disk ${disks[failed].id} is full`));
        }
        throw new FragmentWriteError(
          failedDisks,
          fsError('EIO', `writing a fragment to disk ${disks[failed].id} failed: ${(reason as Error).message}`),
        );
      }
      sums = firstOf.map((first) => (results[first] as PromiseFulfilledResult<string>).value);
    } finally {
      for (const d of disks) this.pool.disks.reserve(d.id, -transient);
    }
    const rows: FragmentRow[] = fragments.map((_, slot) => ({ eid, slot, disk: disks[slot].id, size, checksum: sums[slot] }));
    return {
      extent: { ino, idx, eid, policy: policyName, length, encoded_length: length, checksum_alg: alg },
      fragments: rows,
      files,
    };
  }

  /** The extent's bytes (its `length`), read from the fewest fragments that verify. */
  async read(ext: ExtentRow): Promise<Buffer> {
    const policy = policyOf(ext.policy);
    const frags = this.pool.store.fragmentsForRead(ext);
    const n = fragmentCount(policy);
    const got: (Buffer | null)[] = new Array<Buffer | null>(n).fill(null);
    const need = policy.kind === 'replication' ? 1 : policy.data;
    // Preferred order: data slots first (no decode needed), readable disks only.
    const order = frags.filter((f) => this.pool.disks.readable(f.disk));
    let good = 0;
    let cursor = 0;
    while (good < need && cursor < order.length) {
      const batch = order.slice(cursor, cursor + (need - good));
      cursor += batch.length;
      const results = await Promise.all(batch.map((f) => this.readVerified(ext, f)));
      results.forEach((data, i) => {
        if (data) {
          got[batch[i].slot] = data;
          good++;
        }
      });
    }
    if (frags.length === 0) {
      throw fsError(
        'EIO',
        `extent ${ext.eid} (file inode ${ext.ino}, extent ${ext.idx}) was lost: the flush of its last write failed; it reads EIO until rewritten`,
      );
    }
    if (good < need) {
      throw fsError('EIO', `extent ${ext.eid} (file inode ${ext.ino}, bytes ${ext.idx} extent) has ${good} good fragments, needs ${need}`);
    }
    if (policy.kind === 'erasure' && [...Array(policy.data).keys()].some((i) => !got[i])) this.counters.reconstructions++;
    const full = await decodeExtent(policy, got, ext.encoded_length, (n) =>
      n === this.buffers.size ? this.buffers.take() : Buffer.allocUnsafe(n),
    );
    for (const g of got) if (g && g !== full) this.giveBack(g);
    return full;
  }

  /** One fragment, or null if it is missing, unreadable or fails its checksum (recorded for repair). */
  async readVerified(ext: ExtentRow, f: FragmentRow): Promise<Buffer | null> {
    return (await this.checkFragment(ext, f)).data;
  }

  /**
   * Reads and verifies one fragment. A problem (missing, short, io, checksum, disk failed) is
   * recorded against the fragment and its disk, so status and rebuild see it.
   */
  async checkFragment(ext: ExtentRow, f: FragmentRow): Promise<{ data: Buffer | null; problem: string | null }> {
    const disk = this.pool.disks.get(f.disk);
    if (!disk) return { data: null, problem: 'disk not in pool' };
    if (disk.health === 'failed') return { data: null, problem: 'disk failed' };
    const buf = this.fragmentBuffer(f.size);
    const started = performance.now();
    const res = await this.io.read(fragmentPath(disk.path, f.eid, f.slot), disk.path, ext.checksum_alg as ChecksumAlgorithm, buf);
    this.noteIo(disk.id, 'read', performance.now() - started, res.ok ? f.size : 0);
    if (res.ok && res.sum === f.checksum) return { data: buf, problem: null };
    this.giveBack(buf);
    // This process out of descriptors or memory: nothing is wrong with the fragment or its disk.
    if (!res.ok && PROCESS_LIMITS.has(res.code)) return { data: null, problem: `${res.code}: ${res.message}` };
    const kind = res.ok ? 'checksum' : res.code === 'ENOENT' ? 'missing' : res.code === 'SHORT' ? 'short' : 'io';
    this.counters.fragmentErrors++;
    let first = true;
    try {
      first = this.firstError(f);
      this.pool.store.recordFragmentError(f.eid, f.slot, f.disk, kind, Date.now());
    } catch {
      /* metadata closed under us (shutdown): the read result stands */
    }
    // A missing file is a lost fragment, not a misbehaving disk; anything else counts against the
    // disk that holds the fragment, once: every reader of an extent whose copies are all bad reads
    // each of them again, and counting each time would turn disks suspect for one bad extent.
    if (kind !== 'missing' && first) this.pool.recordDiskError(f.disk, kind === 'checksum' ? 'checksum' : 'read');
    return { data: null, problem: kind };
  }

  /**
   * Fragments already found bad (and counted against their disk), by `eid.slot@disk`: those on
   * record when this process started, and those found since. A repair takes its fragment off.
   */
  private knownBad: Set<string> | null = null;

  /** Whether this is the first time fragment `f` is found bad; notes that it has been. */
  private firstError(f: FragmentRow): boolean {
    this.knownBad ??= new Set(this.pool.store.fragmentErrors().map((e) => `${e.eid}.${e.slot}@${e.disk}`));
    const key = `${f.eid}.${f.slot}@${f.disk}`;
    if (this.knownBad.has(key)) return false;
    this.knownBad.add(key);
    return true;
  }

  /** A fragment write found the disk's filesystem full: no new data there until statfs, asked now, says otherwise. */
  private markFull(id: string): void {
    this.pool.disks.markFull(id);
    this.pool.disks.refreshSpace().catch(() => undefined);
  }

  /** Counts a fragment operation; one slower than the pool's threshold counts against its disk. */
  private noteIo(diskId: string, kind: 'read' | 'write', ms: number, bytes: number): void {
    diskIo.note(this.pool.name, diskId, kind, ms, bytes);
    if (ms > this.pool.thresholds.slowIoMs) this.pool.recordDiskError(diskId, 'slow');
  }

  /** Returns a buffer that checkFragment or read handed out. */
  release(buf: Buffer): void {
    this.giveBack(buf);
  }

  /**
   * Puts a rebuilt copy of fragment (eid, slot) on disk: over the bad file when its disk is still
   * healthy (written aside, then renamed over it), else on another healthy disk that holds no other
   * fragment of the extent (recorded as a repair intent, then relocated in one transaction).
   * Returns the disk it landed on, or null when the extent changed under us.
   */
  async writeRepair(
    ext: ExtentRow,
    frag: FragmentRow,
    data: Buffer,
    siblings: string[],
    opts: RepairWriteOptions = {},
  ): Promise<string | null> {
    if (opts.readBack === false) {
      // Checked before it is written instead of read back after: the rebuilt bytes must match the
      // checksum recorded when the fragment was first written.
      const sum = await this.io.hash(ext.checksum_alg as ChecksumAlgorithm, data);
      if (sum !== frag.checksum) throw new Error(`the rebuilt fragment ${frag.eid}.${frag.slot} does not match its recorded checksum`);
    }
    const current = this.pool.disks.get(frag.disk);
    // In place when the disk still takes writes of existing fragments (bit rot on a suspect disk
    // is repaired where it is, as ZFS does); elsewhere when it is failing, draining or read-only.
    const inPlace = current && !opts.relocate && ['healthy', 'degraded', 'suspect'].includes(current.health);
    if (inPlace && current) {
      try {
        return (await this.rewriteInPlace(current.path, frag, data)) ? current.id : null;
      } catch {
        /* the disk would not take it (read-only, I/O error): put the copy on another disk */
      }
    }
    return this.relocate(ext, frag, data, siblings, opts.readBack !== false);
  }

  /** Writes the rebuilt copy beside the bad one and renames it over: either file is consistent with metadata. */
  private async rewriteInPlace(diskPath: string, frag: FragmentRow, data: Buffer): Promise<boolean> {
    const final = fragmentPath(diskPath, frag.eid, frag.slot);
    const aside = `${final}.repair`;
    try {
      await this.io.write(aside, diskPath, data, null);
      await syncFile(aside);
      await rename(aside, final);
    } catch (err) {
      await rm(aside, { force: true }).catch(() => undefined);
      throw err;
    }
    if (!this.pool.store.fragment(frag.eid, frag.slot)) {
      await rm(final, { force: true }); // the extent was replaced meanwhile; do not leave an orphan
      return false;
    }
    this.pool.store.clearFragmentError(frag.eid, frag.slot);
    this.knownBad?.delete(`${frag.eid}.${frag.slot}@${frag.disk}`);
    return true;
  }

  private async relocate(ext: ExtentRow, frag: FragmentRow, data: Buffer, siblings: string[], readBack: boolean): Promise<string | null> {
    // Not in the failure domain of any other fragment of the extent (unless the pool allows shared
    // domains and no other is left).
    const others = new Set(siblings.map((id) => this.pool.disks.get(id)?.domain).filter((x) => x !== undefined));
    const free = this.pool.disks.writable().filter((d) => !siblings.includes(d.id));
    const apart = free.filter((d) => !others.has(d.domain));
    const candidates = apart.length || !this.placement.sharedDomains ? apart : free;
    if (!candidates.length) {
      throw fsError(
        'ENOSPC',
        `rebuild of fragment ${frag.eid}.${frag.slot}: no healthy disk outside the failure domains of its other fragments (${[...others].map(domainLabel).join(', ') || 'none'})`,
      );
    }
    const [target] = chooseDisks(candidates, 1, footprint(data.length), `rebuild of fragment ${frag.eid}.${frag.slot}`, this.placement);
    this.pool.disks.reserve(target.id, footprint(data.length));
    try {
      this.pool.versions.beginRepair(frag.eid, frag.slot, target.id);
      const file = fragmentPath(target.path, frag.eid, frag.slot);
      await this.io.write(file, target.path, data, null);
      await syncFile(file);
      if (readBack) {
        // Verified before the old copy is released: read it back and check it against the record.
        const check = await this.checkFragment(ext, { ...frag, disk: target.id });
        if (!check.data) throw new Error(`the new copy on ${target.id} did not verify (${check.problem})`);
        this.release(check.data);
      }
      return this.pool.versions.commitRepair(frag.eid, frag.slot, frag.disk, target.id, data.length) ? target.id : null;
    } finally {
      this.pool.disks.reserve(target.id, -footprint(data.length));
    }
  }
}

export interface RepairWriteOptions {
  /** Put the copy on another disk even if the fragment's own disk is healthy (a drain). */
  relocate?: boolean;
  /**
   * Read the new copy back and verify it before metadata points at it (the default; a drain needs
   * it, since the old copy is released). false: verify the bytes against the recorded checksum
   * before writing them instead, for a rebuild, whose old copy is already gone.
   */
  readBack?: boolean;
}

/** A fragment write failed on these disks; the extent may be placed again elsewhere. */
class FragmentWriteError extends Error {
  constructor(
    readonly disks: string[],
    readonly error: FsError,
  ) {
    super(error.message);
  }
}

export function isFsError(err: unknown): err is FsError {
  return err instanceof FsError;
}

export function fragmentDirs(files: string[]): string[] {
  return [...new Set(files.map((f) => path.dirname(f)))];
}
