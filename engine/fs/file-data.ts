import type { EngineConfig } from '../config/schema.js';
import type { BufferPool } from '../data/buffer-pool.js';
import { ExtentCache } from '../data/extent-cache.js';
import { ExtentStore, fragmentDirs, policyOf, type ExtentStoreHost } from '../data/extent-store.js';
import { syncFile } from '../data/fragment-io.js';
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
}

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
  error: FsError | null;
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
        error: null,
        lastReadIdx: -2,
        prefetchedTo: -1,
      };
      this.open.set(ino, of);
    }
    of.refs++;
    return of;
  }

  /** Drops one reference; returns true when it was the last. Flushes first. */
  async release(of: OpenFile): Promise<boolean> {
    try {
      await this.flush(of);
    } finally {
      of.refs--;
      if (of.refs <= 0 && of.dirty.size === 0 && of.chains.size === 0) this.open.delete(of.ino);
    }
    return of.refs <= 0;
  }

  /**
   * A background flush that failed makes every later write, flush and fsync of the file fail, until
   * the last handle is closed. Reporting it once is not enough: the kernel turns an error in the middle
   * of a large write(2) into a short write, and the caller's retry of the rest must not succeed over
   * the hole the failed extent left.
   */
  private takeError(of: OpenFile): void {
    if (of.error) throw of.error;
  }

  /**
   * Copies `len` bytes into the file's write buffers. Returns a plain number when nothing had to be
   * loaded and no back-pressure applies (a sequential writer's every call), so the FUSE reply skips
   * a promise round trip.
   */
  write(of: OpenFile, src: Buffer, len: number, pos: number): number | Promise<number> {
    this.takeError(of);
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
      const d = of.dirty.get(idx) ?? this.freshExtent(of, idx);
      if (!d) return this.writeSlow(of, src, len, pos, done);
      done += this.copyIn(of, d, idx, src, done, off - idx * E, Math.min(len - done, E - (off - idx * E)));
    }
    return this.finishWrite(of, len, pos);
  }

  private async writeSlow(of: OpenFile, src: Buffer, len: number, pos: number, done: number): Promise<number> {
    const E = this.E;
    while (done < len) {
      const off = pos + done;
      const idx = Math.floor(off / E);
      const d = await this.dirtyExtent(of, idx);
      done += this.copyIn(of, d, idx, src, done, off - idx * E, Math.min(len - done, E - (off - idx * E)));
    }
    return this.finishWrite(of, len, pos);
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

  /** A write buffer made without waiting: nothing committed to load, or only an in-flight version to copy. */
  private freshExtent(of: OpenFile, idx: number): DirtyExtent | null {
    if (of.loading.has(idx)) return null;
    const newer = of.inflight.get(idx);
    if (!newer && this.pool.store.extent(of.ino, idx)) return null;
    const fresh = { buf: this.buffers.take(), len: 0 };
    if (newer) {
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
    const fresh = { buf, len };
    of.dirty.set(idx, fresh);
    return fresh;
  }

  private startFlush(of: OpenFile, idx: number): void {
    const d = of.dirty.get(idx);
    if (!d) return;
    of.dirty.delete(idx);
    of.inflight.set(idx, d);
    const prev = of.chains.get(idx) ?? Promise.resolve();
    const p: Promise<void> = prev
      .then(() => this.flushSlots.run(() => this.commitExtent(of, idx, d)))
      .catch((err: unknown) => {
        of.error ??= err instanceof FsError ? err : fsError('EIO', String(err));
      })
      .finally(() => {
        if (of.inflight.get(idx) === d) of.inflight.delete(idx);
        this.buffers.give(d.buf);
        if (of.chains.get(idx) === p) of.chains.delete(idx);
        if (of.refs <= 0 && of.chains.size === 0 && of.dirty.size === 0) this.open.delete(of.ino);
      });
    of.chains.set(idx, p);
  }

  private async commitExtent(of: OpenFile, idx: number, d: DirtyExtent): Promise<void> {
    const data = d.buf.subarray(0, d.len);
    const written = await this.extents.write(of.ino, idx, data, policyOf(of.policy), of.tier);
    const committed = this.pool.versions.commit(written.extent, written.fragments, Math.min(of.size, idx * this.E + d.len), of.mtime);
    if (committed) {
      of.unsynced.push(...written.files);
      of.persistedSize = Math.max(of.persistedSize, Math.min(of.size, idx * this.E + d.len));
    }
  }

  /** Pushes every buffered byte of the file into committed extents and the size into metadata. */
  async flush(of: OpenFile): Promise<void> {
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
    this.takeError(of);
  }

  /** flush, then make the fragments and the metadata durable. */
  async fsync(of: OpenFile): Promise<void> {
    await this.flush(of);
    const files = of.unsynced;
    of.unsynced = [];
    await Promise.all(files.map((f) => syncFile(f)));
    await Promise.all(fragmentDirs(files).map((dir) => syncFile(dir)));
    this.pool.store.makeDurable();
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
