import type { EngineConfig } from '../config/schema.js';
import type { BufferPool } from '../data/buffer-pool.js';
import { ExtentCache } from '../data/extent-cache.js';
import { ExtentStore, fragmentDirs, policyOf, type ExtentStoreHost } from '../data/extent-store.js';
import { syncFile } from '../data/fragment-io.js';
import type { Reservation } from '../data/reservation.js';
import { logger } from '../observability/logger.js';
import { EXTENT_LOOKAHEAD, type ExtentRow, type MetadataStore } from '../metadata/store.js';
import type { ExtentVersions } from '../pool/extent-versions.js';
import type { PoolSettings } from '../pool/pool.js';
import { formatPolicy, fragmentCount } from '../redundancy/policy.js';
import { describeDomains } from '../pool/placement.js';
import { fsError, FsError } from '../util/errors.js';
import { copyBytes } from '../util/bytes.js';
import { Semaphore } from '../util/semaphore.js';

/** What file contents need of their pool (a Pool provides it). */
export interface FileDataHost extends ExtentStoreHost {
  readonly settings: Pick<PoolSettings, 'extentSize' | 'checksum' | 'defaultPolicy'>;
  readonly store: ExtentStoreHost['store'] & Pick<MetadataStore, 'extent' | 'inode' | 'setSize' | 'makeDurable' | 'tx' | 'truncateExtents'>;
  readonly versions: ExtentStoreHost['versions'] & Pick<ExtentVersions, 'commit'>;
  reapGarbage(): Promise<void>;
}

interface DirtyExtent {
  /** extentSize bytes; only the first `len` are meaningful. Never changed once handed to a flush. */
  buf: Buffer;
  len: number;
  /**
   * Space held for the version this buffer becomes, taken before the first write into it is
   * accepted. null: nothing was written into it (a copy of the current version, dropped, not flushed).
   */
  res: Reservation | null;
  /** Bytes of the extent `res` covers. */
  resLen: number;
}

/** Where a handle stands in its file's flush errors: each is reported to it once (see FileData.flush). */
export interface ErrorCursor {
  errorsSeen: number;
}

/**
 * Reservations grow in steps of this many bytes of extent (or the whole extent when it is smaller),
 * so a writer of small pieces does not reserve with every call.
 */
const RESERVE_STEP = 64 * 1024;

const log = logger('file-data');

/** Per-inode state while at least one handle is open: the write buffer and what is being flushed. */
export interface OpenFile {
  ino: number;
  refs: number;
  size: number;
  /** Size as last written to metadata. */
  persistedSize: number;
  mtime: number;
  policy: string;
  /** Disks of this tier only (a volume's tier), or any. */
  tier: string | null;
  dirty: Map<number, DirtyExtent>;
  loading: Map<number, Promise<DirtyExtent>>;
  inflight: Map<number, DirtyExtent>;
  chains: Map<number, Promise<void>>;
  /** Fragment files written since the last fsync. */
  unsynced: string[];
  /** Flushes of this file that failed, and the last one's error. */
  errors: number;
  lastError: FsError | null;
  /** `errors` as last reported to anyone: a handle opened later hears of those not reported yet. */
  reported: number;
  lastReadIdx: number;
  /** Read-ahead has been started up to this extent. */
  prefetchedTo: number;
}

export interface FileDataOptions {
  cacheBytes: number;
  /** Extents being encoded and written at once, across all files. */
  flushConcurrency: number;
  /** Full extents a file may have in flight before writes wait. */
  maxInflightPerFile: number;
  /** Partially written extents kept per file before they are flushed anyway. */
  maxDirtyPerFile: number;
  readAheadExtents: number;
}

export const DEFAULT_FILE_DATA_OPTIONS: FileDataOptions = {
  cacheBytes: 64 * 2 ** 20,
  flushConcurrency: 4,
  maxInflightPerFile: 8,
  maxDirtyPerFile: 16,
  readAheadExtents: 8,
};

const MAX_EXTENTS_PER_FILE = 32;
const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** File data settings from the configuration's performance section. */
export function fileDataOptionsFrom(c: EngineConfig, extentSize: number): FileDataOptions {
  const p = c.performance;
  return {
    cacheBytes: p.data_cache_size,
    flushConcurrency: p.parallel_writes,
    maxInflightPerFile: Math.max(2, p.parallel_writes * 2),
    // Counts of extents are capped so that small extents do not mean hundreds of buffers per file.
    maxDirtyPerFile: p.write_batching ? clamp(Math.floor(p.batch_size / extentSize), 1, MAX_EXTENTS_PER_FILE) : 1,
    readAheadExtents: p.read_ahead ? clamp(Math.ceil(p.read_ahead_size / extentSize), 1, MAX_EXTENTS_PER_FILE) : 0,
  };
}

/**
 * File contents: buffers writes into whole extents, flushes them as new extent versions
 * (copy-on-write, committed in one metadata transaction each) and serves reads from write
 * buffers, a decoded-extent cache, or the fragments.
 */
function copyOrZero(src: Buffer | null, srcLen: number, within: number, dest: Buffer, at: number, n: number): void {
  const avail = src ? Math.max(0, Math.min(n, srcLen - within)) : 0;
  if (avail > 0 && src) copyBytes(src, within, within + avail, dest, at);
  if (avail < n) dest.fill(0, at + avail, at + n);
}

export class FileData {
  readonly extents: ExtentStore;
  readonly cache: ExtentCache;
  private readonly open = new Map<number, OpenFile>();
  private readonly reading = new Map<number, Promise<Buffer>>();
  private readonly flushSlots: Semaphore;
  private readonly E: number;
  private readonly buffers: BufferPool;
  bytesWritten = 0;
  bytesRead = 0;

  constructor(
    private readonly pool: FileDataHost,
    private readonly opts: FileDataOptions = DEFAULT_FILE_DATA_OPTIONS,
  ) {
    this.extents = new ExtentStore(pool, Math.ceil(opts.cacheBytes / pool.settings.extentSize) + 64);
    this.cache = new ExtentCache(opts.cacheBytes, (b) => this.extents.buffers.give(b));
    this.flushSlots = new Semaphore(opts.flushConcurrency);
    this.E = pool.settings.extentSize;
    this.buffers = this.extents.buffers;
  }

  isOpen(ino: number): boolean {
    return this.open.has(ino);
  }

  get(ino: number): OpenFile | undefined {
    return this.open.get(ino);
  }

  acquire(ino: number, size: number, mtime: number, policy: string | null, tier: string | null = null): OpenFile {
    let of = this.open.get(ino);
    if (!of) {
      of = {
        ino,
        refs: 0,
        size,
        persistedSize: size,
        mtime,
        policy: policy ?? formatPolicy(this.pool.settings.defaultPolicy),
        tier,
        dirty: new Map(),
        loading: new Map(),
        inflight: new Map(),
        chains: new Map(),
        unsynced: [],
        errors: 0,
        lastError: null,
        reported: 0,
        lastReadIdx: -2,
        prefetchedTo: -1,
      };
      this.open.set(ino, of);
    }
    of.refs++;
    return of;
  }

  /**
   * Drops one reference; returns true when it was the last. Flushes first; a failed flush is
   * reported by flush and fsync (close(2) sends a flush before the release), not here.
   */
  async release(of: OpenFile): Promise<boolean> {
    try {
      await this.drain(of);
    } finally {
      of.refs--;
      if (of.refs <= 0 && of.dirty.size === 0 && of.chains.size === 0) this.open.delete(of.ino);
    }
    return of.refs <= 0;
  }

  /**
   * Throws the error of a flush that failed since `who` (a handle) was last told, as Linux reports a
   * writeback error to each open file once, at fsync or close. Without a handle: once per file.
   * A failed flush does not make later writes fail: its range reads EIO until it is rewritten (see
   * flushFailed), so nothing can succeed silently over it.
   */
  private report(of: OpenFile, who?: ErrorCursor): void {
    const seen = who ? who.errorsSeen : of.reported;
    if (of.errors <= seen || !of.lastError) return;
    if (who) who.errorsSeen = of.errors;
    of.reported = of.errors;
    throw of.lastError;
  }

  /**
   * Copies `len` bytes into the file's write buffers. Returns a plain number when nothing had to be
   * loaded and no back-pressure applies (a sequential writer's every call), so the FUSE reply skips
   * a promise round trip. Nothing is accepted without the space its flush will take (see reserve):
   * past it the write is short, or fails with ENOSPC when nothing of it fits.
   */
  write(of: OpenFile, src: Buffer, len: number, pos: number): number | Promise<number> {
    const policy = policyOf(of.policy);
    const writable = this.pool.disks.writableCount;
    if (writable < fragmentCount(policy)) {
      throw fsError('ENOSPC', `policy ${of.policy} needs ${fragmentCount(policy)} healthy disks, the pool has ${writable}`);
    }
    // Too few failure domains fails at write(2), not only at the flush that cannot place the extent.
    if (this.pool.disks.writableDomainCount < fragmentCount(policy) && !this.pool.sharedDomainsAllowed()) {
      throw fsError(
        'ENOSPC',
        `policy ${of.policy} needs ${fragmentCount(policy)} failure domains but the pool's healthy disks are in ${this.pool.disks.writableDomainCount}: ${describeDomains(this.pool.disks.writable())}`,
      );
    }
    const E = this.E;
    let done = 0;
    while (done < len) {
      const off = pos + done;
      const idx = Math.floor(off / E);
      const within = off - idx * E;
      const n = Math.min(len - done, E - within);
      const d = of.dirty.get(idx) ?? this.freshExtent(of, idx, within, n);
      if (!d) return this.writeSlow(of, src, len, pos, done);
      if (d.resLen < Math.max(d.len, within + n) && this.reserve(of, idx, d, within + n) !== null)
        return this.writeSlow(of, src, len, pos, done);
      done += this.copyIn(of, d, idx, src, done, within, n);
    }
    return this.finishWrite(of, len, pos);
  }

  /**
   * The same as write() from byte `done` on, waiting for extents to load, and, when the space is
   * not there, once for space to come free (see waitForSpace) before refusing.
   */
  private async writeSlow(of: OpenFile, src: Buffer, len: number, pos: number, done: number): Promise<number> {
    const E = this.E;
    let waited = false;
    while (done < len) {
      const off = pos + done;
      const idx = Math.floor(off / E);
      const within = off - idx * E;
      const n = Math.min(len - done, E - within);
      let d = of.dirty.get(idx) ?? this.freshExtent(of, idx, within, n);
      if (!d) {
        const loaded = await this.dirtyExtent(of, idx);
        // Handed to a flush (or replaced) while it loaded: look again.
        if (of.dirty.get(idx) !== loaded) continue;
        d = loaded;
      }
      if (d.resLen < Math.max(d.len, within + n)) {
        const refused = this.reserve(of, idx, d, within + n);
        if (refused) {
          if (!waited) {
            waited = true;
            await this.waitForSpace();
            continue;
          }
          if (done > 0) break; // a short write: the caller's retry of the rest gets ENOSPC
          throw refused;
        }
      }
      done += this.copyIn(of, d, idx, src, done, within, n);
    }
    return this.finishWrite(of, done, pos);
  }

  /**
   * Holds the space extent `idx` will take once flushed, `upTo` bytes of it at least (and all it
   * already holds: an overwrite writes a whole new version). Returns null, or the ENOSPC error
   * when the space cannot be had; a buffer made for this write alone is then dropped again.
   */
  private reserve(of: OpenFile, idx: number, d: DirtyExtent, upTo: number): FsError | null {
    const want = Math.min(this.E, Math.ceil(Math.max(upTo, d.len) / RESERVE_STEP) * RESERVE_STEP);
    try {
      d.res = this.extents.reserve(policyOf(of.policy), want, of.tier, d.res);
    } catch (err) {
      if (!(err instanceof FsError) || err.code !== 'ENOSPC') throw err;
      // Empty and made by this write (nobody else has seen it): not worth a buffer. A loaded copy
      // stays; it is dropped, unwritten, at the next flush.
      if (d.len === 0 && !d.res && of.dirty.get(idx) === d) {
        of.dirty.delete(idx);
        this.buffers.give(d.buf);
      }
      return err;
    }
    d.resLen = want;
    return null;
  }

  /**
   * Before a write is refused for want of space: the flushes under way finish (an overwrite's old
   * version turns into garbage then), the garbage reaper deletes what deletes and overwrites left,
   * and the filesystems are asked for their free space again.
   */
  private async waitForSpace(): Promise<void> {
    await Promise.allSettled([...this.open.values()].flatMap((f) => [...f.chains.values()]));
    await this.pool.reapGarbage();
    await this.pool.disks.refreshSpace();
  }

  private copyIn(of: OpenFile, d: DirtyExtent, idx: number, src: Buffer, from: number, within: number, n: number): number {
    if (within > d.len) d.buf.fill(0, d.len, within);
    copyBytes(src, from, from + n, d.buf, within);
    if (within + n > d.len) d.len = within + n;
    if (within + n === this.E) this.startFlush(of, idx);
    return n;
  }

  private finishWrite(of: OpenFile, len: number, pos: number): number | Promise<number> {
    if (pos + len > of.size) of.size = pos + len;
    of.mtime = Date.now();
    this.bytesWritten += len;
    if (of.dirty.size > this.opts.maxDirtyPerFile) for (const idx of [...of.dirty.keys()]) this.startFlush(of, idx);
    if (of.inflight.size <= this.opts.maxInflightPerFile) return len;
    return (async () => {
      while (of.inflight.size > this.opts.maxInflightPerFile) await Promise.race(of.chains.values());
      return len;
    })();
  }

  /**
   * A write buffer made without waiting: nothing committed to load, or only an in-flight version to
   * copy, or a write of bytes [within, within + n) that covers all of the current version (which
   * needs nothing of it: so a lost extent can be rewritten).
   */
  private freshExtent(of: OpenFile, idx: number, within: number, n: number): DirtyExtent | null {
    if (of.loading.has(idx)) return null;
    const newer = of.inflight.get(idx);
    if (!newer) {
      const ext = this.pool.store.extent(of.ino, idx);
      if (ext && (within > 0 || n < ext.length)) return null;
    }
    const fresh: DirtyExtent = { buf: this.buffers.take(), len: 0, res: null, resLen: 0 };
    if (newer && (within > 0 || n < newer.len)) {
      copyBytes(newer.buf, 0, newer.len, fresh.buf, 0);
      fresh.len = newer.len;
    }
    of.dirty.set(idx, fresh);
    return fresh;
  }

  private dirtyExtent(of: OpenFile, idx: number): Promise<DirtyExtent> | DirtyExtent {
    const d = of.dirty.get(idx);
    if (d) return d;
    const loading = of.loading.get(idx);
    if (loading) return loading;
    const p = this.loadForWrite(of, idx);
    of.loading.set(idx, p);
    const done = () => {
      if (of.loading.get(idx) === p) of.loading.delete(idx);
    };
    p.then(done, done);
    return p;
  }

  /** A write buffer for extent `idx` holding its current bytes (newest in-flight version, else committed). */
  private async loadForWrite(of: OpenFile, idx: number): Promise<DirtyExtent> {
    const buf = this.buffers.take();
    let len = 0;
    const newer = of.inflight.get(idx);
    if (newer) {
      copyBytes(newer.buf, 0, newer.len, buf, 0);
      len = newer.len;
    } else {
      const ext = this.pool.store.extent(of.ino, idx);
      if (ext) {
        let data: Buffer;
        try {
          data = await this.extentData(ext);
        } catch (err) {
          this.buffers.give(buf);
          throw err;
        }
        len = Math.min(ext.length, data.length);
        copyBytes(data, 0, len, buf, 0);
      }
    }
    const fresh: DirtyExtent = { buf, len, res: null, resLen: 0 };
    of.dirty.set(idx, fresh);
    return fresh;
  }

  private startFlush(of: OpenFile, idx: number): void {
    const d = of.dirty.get(idx);
    if (!d) return;
    of.dirty.delete(idx);
    if (!d.res) {
      // Nothing was written into it: the version it copies stands.
      this.buffers.give(d.buf);
      return;
    }
    of.inflight.set(idx, d);
    const prev = of.chains.get(idx) ?? Promise.resolve();
    const p: Promise<void> = prev
      .then(() => this.flushSlots.run(() => this.commitExtent(of, idx, d)))
      .catch((err: unknown) => this.flushFailed(of, idx, d, err instanceof FsError ? err : fsError('EIO', String(err))))
      .finally(() => {
        d.res?.release();
        if (of.inflight.get(idx) === d) of.inflight.delete(idx);
        this.buffers.give(d.buf);
        if (of.chains.get(idx) === p) of.chains.delete(idx);
        if (of.refs <= 0 && of.chains.size === 0 && of.dirty.size === 0) this.open.delete(of.ino);
      });
    of.chains.set(idx, p);
  }

  /**
   * A flush that failed after its writes were acknowledged (a disk filled or failed under it): the
   * bytes are gone, and no reader may take zeros or the older version for them. Inside the file's
   * size the extent becomes a lost one, a version without fragments, which reads EIO until it is
   * rewritten; at the end of the file the size goes back to what the other data covers. fsync and
   * close report the error (see report).
   */
  private flushFailed(of: OpenFile, idx: number, d: DirtyExtent, err: FsError): void {
    of.errors++;
    of.lastError = err;
    const E = this.E;
    // The file's size without this extent's bytes: what is committed and what other buffers hold.
    let without = of.persistedSize;
    for (const [i, x] of of.dirty) without = Math.max(without, i * E + x.len);
    for (const [i, x] of of.inflight) if (x !== d) without = Math.max(without, i * E + x.len);
    const size = Math.min(of.size, without);
    log.event('error', `a flush of inode ${of.ino} failed; bytes ${idx * E}-${idx * E + d.len} are lost: ${err.message}`, {
      ino: of.ino,
      extent: idx,
      size,
      code: err.code,
    });
    try {
      const store = this.pool.store;
      if (!store.inode(of.ino)) return;
      if (idx * E < size) {
        const eid = this.pool.versions.begin([]);
        const length = Math.min(d.len, size - idx * E);
        const lost = {
          ino: of.ino,
          idx,
          eid,
          policy: of.policy,
          length,
          encoded_length: length,
          checksum_alg: this.pool.settings.checksum,
        };
        this.pool.versions.commit(lost, [], of.persistedSize, of.mtime);
      }
      if (size < of.size) {
        of.size = size;
        // Extents marked lost past the new end would turn a later hole there into EIO: they go.
        store.tx(() => store.truncateExtents(of.ino, size, E));
      }
    } catch (e) {
      of.size = size;
      log.error(`could not mark bytes ${idx * E}-${idx * E + d.len} of inode ${of.ino} lost: ${String(e)}`, { ino: of.ino });
    }
  }

  private async commitExtent(of: OpenFile, idx: number, d: DirtyExtent): Promise<void> {
    const data = d.buf.subarray(0, d.len);
    const written = await this.extents.write(of.ino, idx, data, policyOf(of.policy), of.tier, d.res);
    const committed = this.pool.versions.commit(written.extent, written.fragments, Math.min(of.size, idx * this.E + d.len), of.mtime);
    if (committed) {
      of.unsynced.push(...written.files);
      of.persistedSize = Math.max(of.persistedSize, Math.min(of.size, idx * this.E + d.len));
    }
  }

  /**
   * Pushes every buffered byte of the file into committed extents and the size into metadata, then
   * reports a failed flush `who` has not heard of (see report).
   */
  async flush(of: OpenFile, who?: ErrorCursor): Promise<void> {
    await this.drain(of);
    this.report(of, who);
  }

  private async drain(of: OpenFile): Promise<void> {
    for (;;) {
      for (const idx of [...of.dirty.keys()]) this.startFlush(of, idx);
      if (of.loading.size) await Promise.allSettled(of.loading.values());
      if (of.chains.size === 0 && of.dirty.size === 0) break;
      await Promise.allSettled([...of.chains.values()]);
    }
    if (this.pool.store.inode(of.ino) && of.persistedSize !== of.size) {
      this.pool.store.setSize(of.ino, of.size, of.mtime);
      of.persistedSize = of.size;
    }
  }

  /** flush, then make the fragments and the metadata durable; a failed flush is reported after. */
  async fsync(of: OpenFile, who?: ErrorCursor): Promise<void> {
    await this.drain(of);
    const files = of.unsynced;
    of.unsynced = [];
    await Promise.all(files.map((f) => syncFile(f)));
    await Promise.all(fragmentDirs(files).map((dir) => syncFile(dir)));
    this.pool.store.makeDurable();
    this.report(of, who);
  }

  /**
   * Reads into `dest`. Returns a plain number when every byte is already in memory (the common
   * case under read-ahead), so the FUSE reply skips a promise round trip.
   */
  read(of: OpenFile, dest: Buffer, len: number, pos: number): number | Promise<number> {
    if (pos >= of.size) return 0;
    const end = Math.min(pos + len, of.size);
    const E = this.E;
    let done = 0;
    while (pos + done < end) {
      const off = pos + done;
      const idx = Math.floor(off / E);
      const within = off - idx * E;
      const n = Math.min(end - off, E - within);
      if (idx !== of.lastReadIdx) this.readAhead(of, idx);
      const buffered = of.dirty.get(idx) ?? of.inflight.get(idx);
      let src: Buffer | null = null;
      let srcLen = 0;
      if (buffered) {
        src = buffered.buf;
        srcLen = buffered.len;
      } else if (of.loading.has(idx)) {
        return this.readSlow(of, dest, len, pos, done);
      } else {
        const ext = this.pool.store.extent(of.ino, idx);
        if (ext) {
          src = this.cache.get(ext.eid) ?? null;
          if (!src) return this.readSlow(of, dest, len, pos, done);
          srcLen = Math.min(ext.length, src.length);
        }
      }
      copyOrZero(src, srcLen, within, dest, done, n);
      done += n;
    }
    this.bytesRead += done;
    return done;
  }

  /** The same as read() from byte `done` on, waiting for extents that are not in memory yet. */
  private async readSlow(of: OpenFile, dest: Buffer, len: number, pos: number, done: number): Promise<number> {
    const end = Math.min(pos + len, of.size);
    const E = this.E;
    while (pos + done < end) {
      const off = pos + done;
      const idx = Math.floor(off / E);
      const within = off - idx * E;
      const n = Math.min(end - off, E - within);
      let src: Buffer | null = null;
      let srcLen = 0;
      const buffered = of.dirty.get(idx) ?? of.inflight.get(idx) ?? (of.loading.has(idx) ? await of.loading.get(idx) : undefined);
      if (buffered) {
        src = buffered.buf;
        srcLen = buffered.len;
      } else {
        const ext = this.pool.store.extent(of.ino, idx);
        if (ext) {
          src = await this.extentData(ext);
          srcLen = Math.min(ext.length, src.length);
        }
      }
      copyOrZero(src, srcLen, within, dest, done, n);
      done += n;
    }
    this.bytesRead += done;
    return done;
  }

  /**
   * On entering a new extent of a sequential reader, start loading the extents ahead of it that are
   * not loading yet. The kernel has several read requests of one reader in flight, so they arrive
   * slightly out of order: a step back of one extent still counts as sequential.
   */
  private readAhead(of: OpenFile, idx: number): void {
    const near = idx >= of.lastReadIdx - 1 && idx <= of.lastReadIdx + 1;
    if (!near && idx !== 0) {
      of.lastReadIdx = idx;
      of.prefetchedTo = idx;
      return;
    }
    if (idx <= of.lastReadIdx) return;
    of.lastReadIdx = idx;
    const until = idx + this.opts.readAheadExtents;
    let next = Math.max(idx + 1, of.prefetchedTo + 1);
    for (; next <= until; next++) {
      if (next * this.E >= of.size || of.dirty.has(next) || of.inflight.has(next)) break;
      const ext = this.pool.store.extent(of.ino, next, EXTENT_LOOKAHEAD);
      if (ext && !this.cache.has(ext.eid)) this.extentData(ext).catch(() => undefined);
    }
    of.prefetchedTo = next - 1;
  }

  /** Decoded bytes of an extent version: from the cache, a read already under way, or the disks. */
  extentData(ext: ExtentRow): Promise<Buffer> {
    const cached = this.cache.get(ext.eid);
    if (cached) return Promise.resolve(cached);
    let p = this.reading.get(ext.eid);
    if (!p) {
      p = this.extents.read(ext).then((data) => {
        this.cache.set(ext.eid, data);
        return data;
      });
      p.finally(() => this.reading.delete(ext.eid)).catch(() => undefined);
      this.reading.set(ext.eid, p);
    }
    return p;
  }

  /** Applies a new size: buffered bytes past it are dropped, committed extents trimmed or freed. */
  async truncate(ino: number, size: number): Promise<void> {
    const of = this.open.get(ino);
    if (of) {
      if (of.loading.size) await Promise.allSettled(of.loading.values());
      await Promise.allSettled([...of.chains.values()]);
      for (const [idx, d] of of.dirty) {
        const start = idx * this.E;
        if (start >= size) {
          of.dirty.delete(idx);
          d.res?.release();
          this.buffers.give(d.buf);
        } else if (start + d.len > size) {
          d.len = size - start;
        }
      }
      of.size = size;
      of.persistedSize = size;
      of.mtime = Date.now();
    }
    const store = this.pool.store;
    store.tx(() => {
      store.truncateExtents(ino, size, this.E);
      store.setSize(ino, size, Date.now());
    });
    void this.pool.reapGarbage();
  }

  async flushAll(): Promise<void> {
    await Promise.allSettled([...this.open.values()].map((of) => this.flush(of)));
  }

  async close(): Promise<void> {
    await this.flushAll();
    await this.extents.close();
  }
}
