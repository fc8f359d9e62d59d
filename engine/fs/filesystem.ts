import { xattrCharge, type InodeRow } from '../metadata/store.js';
import { usableSpace } from '../pool/capacity.js';
import { policyOf } from '../data/extent-store.js';
import type { EngineConfig } from '../config/schema.js';
import type { MetadataStore } from '../metadata/store.js';
import { fsError } from '../util/errors.js';
import { FileData, fileDataOptionsFrom, type FileDataHost, type FileDataOptions, type OpenFile } from './file-data.js';
import { isDir, isReg, O_APPEND } from './modes.js';
import { Namespace, POLICY_XATTR, type NamespaceMetadata } from './namespace.js';
import { Quotas, type QuotaMetadata } from './quota.js';

export interface Attr {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  atime: number;
  mtime: number;
  ctime: number;
  blocks: number;
  blksize: number;
}

export interface FsStats {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

/** Who asks for a new entry: it becomes the owner (the FUSE request's caller). */
export interface Owner {
  uid: number;
  gid: number;
}

interface Handle {
  ino: number;
  flags: number;
  file: OpenFile | null;
  volume: string | null;
  /** Flush errors of its file reported to this handle (each once, at fsync or close). */
  errorsSeen: number;
}

/**
 * What the filesystem needs of its pool (a Pool provides it): the metadata (namespace, quotas and
 * attributes are the filesystem's own tables), the configuration, and the data path's needs.
 */
export interface FileSystemHost extends FileDataHost {
  readonly store: FileDataHost['store'] & NamespaceMetadata & QuotaMetadata & Pick<MetadataStore, 'xattrBytes'>;
  readonly config: EngineConfig;
  /** The metadata changed: copy it to the disks' mirrors soon. */
  scheduleMirror(): void;
}

/** The filesystem as FUSE (and tests) see it: path operations over the namespace and file data. */
export class FileSystem {
  readonly ns: Namespace;
  readonly data: FileData;
  /** Per-volume capacity and inode accounting (volume lifecycle is above, in volumes/). */
  readonly quotas: Quotas;
  private readonly handles = new Map<number, Handle>();
  private nextHandle = 1;
  /** The owner of new entries when the caller is not known (fuse-native does not say who asks). */
  private readonly self: Owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

  private readonly maxFileSize: number;
  private readonly maxOpenFiles: number;
  private readonly maxOpenPerVolume: number;
  private readonly openPerVolume = new Map<string, number>();
  /** Called after each namespace change when the configuration turns audit logging on. */
  onAudit: ((op: string, target: string, detail?: Record<string, unknown>) => void) | null = null;

  constructor(
    private readonly pool: FileSystemHost,
    opts: Partial<FileDataOptions> = {},
  ) {
    const config = pool.config;
    this.data = new FileData(pool, { ...fileDataOptionsFrom(config, pool.settings.extentSize), ...opts });
    this.maxFileSize = config.storage.max_file_size;
    this.maxOpenFiles = config.security.max_open_files;
    this.maxOpenPerVolume = config.security.max_open_files_per_volume;
    this.ns = new Namespace(pool.store, (ino) => this.data.isOpen(ino));
    this.quotas = new Quotas(pool.store, (volume) => this.openOrphans(volume));
  }

  private attr(row: InodeRow): Attr {
    const of = this.data.get(row.ino);
    const size = of ? of.size : row.size;
    return {
      ino: row.ino,
      mode: row.mode,
      uid: row.uid,
      gid: row.gid,
      size,
      nlink: row.nlink,
      atime: row.atime,
      mtime: of ? Math.max(of.mtime, row.mtime) : row.mtime,
      ctime: row.ctime,
      blocks: Math.ceil(size / 512),
      blksize: 4096,
    };
  }

  getattr(p: string): Attr {
    return this.attr(this.ns.stat(p));
  }

  fgetattr(fh: number): Attr {
    return this.attr(this.ns.inode(this.handle(fh).ino));
  }

  readdir(p: string): string[] {
    return this.ns.readdir(p);
  }

  mkdir(p: string, mode: number, owner: Owner = this.self): void {
    this.newInode(p, () => this.ns.mkdir(p, mode, owner.uid, owner.gid));
    this.changed('mkdir', p, { mode });
  }

  rmdir(p: string): void {
    this.ns.rmdir(p);
    this.recount(p);
    this.changed('rmdir', p);
  }

  /** A new inode at `p` counts against its volume's inode limit first (EDQUOT past it); a failed `make` gives it back. */
  private newInode<T>(p: string, make: () => T): T {
    const v = this.quotas.of(p);
    if (v) this.quotas.chargeInode(v.name);
    try {
      return make();
    } catch (err) {
      if (v) this.quotas.recount(v.name);
      throw err;
    }
  }

  private recount(p: string): void {
    const v = this.quotas.of(p);
    if (v) this.quotas.recount(v.name);
  }

  /** After a namespace change: the audit log (when it is on) and, once changes settle, the metadata mirrors. */
  private changed(op: string, target: string, detail?: Record<string, unknown>): void {
    this.pool.scheduleMirror();
    this.onAudit?.(op, target, detail);
  }

  private handle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (!h) throw fsError('EBADF', `no open handle ${fh}`);
    return h;
  }

  private openIno(p: string, ino: number, flags: number): number {
    if (this.handles.size >= this.maxOpenFiles)
      throw fsError('EMFILE', `${this.handles.size} files open (security.max_open_files is ${this.maxOpenFiles})`);
    const row = this.ns.inode(ino);
    const volume = this.quotas.of(p) ?? null;
    // One volume cannot take every handle of the pool from the others.
    const held = volume ? (this.openPerVolume.get(volume.name) ?? 0) : 0;
    if (volume && held >= this.maxOpenPerVolume)
      throw fsError(
        'EMFILE',
        `volume ${volume.name} has ${held} files open (security.max_open_files_per_volume is ${this.maxOpenPerVolume})`,
      );
    if (volume) this.openPerVolume.set(volume.name, held + 1);
    const file = isReg(row.mode) ? this.data.acquire(ino, row.size, row.mtime, this.ns.policyFor(p), volume?.tier ?? null) : null;
    const fh = this.nextHandle++;
    this.handles.set(fh, { ino, flags, file, volume: volume?.name ?? null, errorsSeen: file?.reported ?? 0 });
    return fh;
  }

  create(p: string, mode: number, flags = 2, owner: Owner = this.self): number {
    const ino = this.newInode(p, () => this.ns.createFile(p, mode, owner.uid, owner.gid));
    this.changed('create', p, { mode });
    return this.openIno(p, ino, flags);
  }

  open(p: string, flags: number): number {
    const ino = this.ns.resolve(p);
    if (isDir(this.ns.inode(ino).mode) && (flags & 3) !== 0) throw fsError('EISDIR', `'${p}' is a directory`);
    return this.openIno(p, ino, flags);
  }

  private fileOf(fh: number): OpenFile {
    const h = this.handle(fh);
    if (!h.file) throw fsError('EISDIR', `handle ${fh} is not a regular file`);
    return h.file;
  }

  /** fsync on a directory: every namespace change so far reaches stable storage. */
  fsyncdir(): void {
    this.pool.store.makeDurable();
  }

  read(fh: number, buf: Buffer, len: number, pos: number): number | Promise<number> {
    return this.data.read(this.fileOf(fh), buf, len, pos);
  }

  write(fh: number, buf: Buffer, len: number, pos: number): number | Promise<number> {
    const h = this.handle(fh);
    const of = this.fileOf(fh);
    const at = h.flags & O_APPEND ? of.size : pos;
    if (at + len > this.maxFileSize)
      throw fsError('EFBIG', `a write to ${at + len} bytes passes storage.max_file_size (${this.maxFileSize})`);
    if (h.volume !== null && at + len > of.size) this.quotas.charge(h.volume, at + len - of.size);
    return this.data.write(of, buf, len, at);
  }

  async flush(fh: number): Promise<void> {
    const h = this.handle(fh);
    if (h.file) await this.data.flush(h.file, h);
  }

  async fsync(fh: number): Promise<void> {
    const h = this.handle(fh);
    if (h.file) await this.data.fsync(h.file, h);
    else this.pool.store.makeDurable();
  }

  async release(fh: number): Promise<void> {
    const h = this.handle(fh);
    this.handles.delete(fh);
    if (h.volume !== null) this.openPerVolume.set(h.volume, Math.max(0, (this.openPerVolume.get(h.volume) ?? 1) - 1));
    if (!h.file) return;
    const last = await this.data.release(h.file);
    if (last) {
      const row = this.pool.store.inode(h.ino);
      if (row && row.nlink <= 0) {
        this.pool.store.tx(() => this.pool.store.freeInode(h.ino));
        void this.pool.reapGarbage();
      }
    }
  }

  async truncate(p: string, size: number): Promise<void> {
    const row = this.ns.stat(p);
    if (isDir(row.mode)) throw fsError('EISDIR', `'${p}' is a directory`);
    if (!isReg(row.mode)) throw fsError('EINVAL', `'${p}' is not a regular file`);
    this.checkSize(size);
    this.chargeResize(this.quotas.of(p)?.name ?? null, row.ino, size);
    await this.data.truncate(row.ino, size);
    this.changed('truncate', p, { size });
  }

  async ftruncate(fh: number, size: number): Promise<void> {
    this.checkSize(size);
    const of = this.fileOf(fh);
    this.chargeResize(this.handle(fh).volume, of.ino, size);
    await this.data.truncate(of.ino, size);
    this.pool.scheduleMirror();
  }

  /** Growth is charged to the volume first (EDQUOT past its capacity); shrinking makes it count again. */
  private chargeResize(volume: string | null, ino: number, size: number): void {
    if (volume === null) return;
    const current = this.data.get(ino)?.size ?? this.ns.inode(ino).size;
    if (size > current) this.quotas.charge(volume, size - current);
    else this.quotas.recount(volume);
  }

  /**
   * Files of `volume` that are open but no longer have a name: their bytes stay on the disks until
   * the last handle closes, so they count against the volume (a recount from the tree alone would let
   * a writer grow an unlinked file past the quota again and again).
   */
  openOrphans(volume: string): { bytes: number; inodes: number } {
    const seen = new Set<number>();
    let bytes = 0;
    for (const h of this.handles.values()) {
      if (h.volume !== volume || seen.has(h.ino)) continue;
      const row = this.pool.store.inode(h.ino);
      if (!row || row.nlink > 0) continue;
      seen.add(h.ino);
      bytes += this.data.get(h.ino)?.size ?? row.size;
    }
    return { bytes, inodes: seen.size };
  }

  /** Hard links and renames between volumes (or in and out of one) would move data past a quota. */
  private sameVolume(src: string, dst: string): void {
    const a = this.quotas.of(src)?.name ?? null;
    const b = this.quotas.of(dst)?.name ?? null;
    if (a !== b) throw fsError('EXDEV', `'${src}' and '${dst}' are in different volumes`);
  }

  private checkSize(size: number): void {
    if (size > this.maxFileSize) throw fsError('EFBIG', `size ${size} passes storage.max_file_size (${this.maxFileSize})`);
  }

  unlink(p: string): void {
    this.ns.unlink(p);
    const v = this.quotas.of(p);
    if (v) this.quotas.recount(v.name);
    this.changed('unlink', p);
    void this.pool.reapGarbage();
  }

  rename(src: string, dst: string): void {
    this.sameVolume(src, dst);
    if (this.quotas.get(src.replace(/^\/+|\/+$/g, ''))) throw fsError('EBUSY', `'${src}' is a volume; volumes are not renamed`);
    this.ns.rename(src, dst);
    const v = this.quotas.of(dst);
    if (v) this.quotas.recount(v.name);
    this.changed('rename', src, { to: dst });
    void this.pool.reapGarbage();
  }

  link(src: string, dst: string): void {
    this.sameVolume(src, dst);
    // A hard link is a name the metadata keeps: it counts against the inode limit like a new file.
    this.newInode(dst, () => this.ns.link(src, dst));
    this.changed('link', src, { to: dst });
  }

  mknod(p: string, mode: number, owner: Owner = this.self): void {
    this.newInode(p, () => this.ns.mknod(p, mode, owner.uid, owner.gid));
    this.changed('mknod', p, { mode });
  }

  symlink(target: string, p: string, owner: Owner = this.self): void {
    this.newInode(p, () => this.ns.symlink(target, p, owner.uid, owner.gid));
    this.changed('symlink', p, { target });
  }

  readlink(p: string): string {
    return this.ns.readlink(p);
  }

  chmod(p: string, mode: number): void {
    this.ns.chmod(p, mode);
    this.changed('chmod', p, { mode });
  }

  chown(p: string, uid: number, gid: number): void {
    this.ns.chown(p, uid, gid);
    this.changed('chown', p, { uid, gid });
  }

  utimens(p: string, atime: number, mtime: number): void {
    const ino = this.ns.resolve(p);
    const of = this.data.get(ino);
    if (of) of.mtime = mtime;
    this.ns.utimens(ino, atime, mtime);
    this.pool.scheduleMirror();
  }

  /**
   * `caller`: who asks through the mount (unknown through fuse-native). Extended attributes are
   * charged to their volume, and the policy attribute is the volume's, never a process's inside it.
   */
  setxattr(p: string, name: string, value: Buffer, flags: number, caller?: Owner): void {
    if (name === POLICY_XATTR) this.mayChangePolicy(p, caller);
    const v = this.quotas.of(p);
    if (v && name !== POLICY_XATTR) {
      const before = this.pool.store.xattrBytes(this.ns.resolve(p), name);
      const after = xattrCharge(name, value.length);
      if (after > before) this.quotas.charge(v.name, after - before);
      else this.quotas.recount(v.name);
    }
    try {
      this.ns.setxattr(p, name, value, flags);
    } catch (err) {
      if (v) this.quotas.recount(v.name);
      throw err;
    }
    this.changed('setxattr', p, { name });
  }
  getxattr(p: string, name: string): Buffer {
    return this.ns.getxattr(p, name);
  }
  listxattr(p: string): string[] {
    return this.ns.listxattr(p);
  }
  removexattr(p: string, name: string, caller?: Owner): void {
    if (name === POLICY_XATTR) this.mayChangePolicy(p, caller);
    this.ns.removexattr(p, name);
    this.recount(p);
    this.changed('removexattr', p, { name });
  }

  /**
   * A volume's policy is set through CSI or the CLI: a process inside the volume (any uid of a pod)
   * must not raise it past what was reserved, or lower it. A plain top-level directory's policy may
   * be set through the mount by its owner or root.
   */
  private mayChangePolicy(p: string, caller: Owner | undefined): void {
    const v = this.quotas.of(p);
    if (v)
      throw fsError(
        'EPERM',
        `the redundancy policy of volume ${v.name} is the volume's: change it with the CLI or through CSI, not through ${POLICY_XATTR}`,
      );
    if (caller && caller.uid !== 0 && caller.uid !== this.ns.stat(p).uid)
      throw fsError('EPERM', `only the owner of '${p}' or root may set its redundancy policy`);
  }

  /**
   * Capacity as a user can fill it: raw bytes of usable disks scaled by the default policy's overhead.
   * Inside a volume (`p` given), its capacity and inode limit, as `df` in a pod should show them.
   */
  statfs(p?: string): FsStats {
    // Inside a volume: its own policy and tier decide what the disks can still take.
    const v = p === undefined ? undefined : this.quotas.of(p);
    const disks = this.pool.disks.all().filter((d) => d.health !== 'failed' && (!v?.tier || d.tier === v.tier));
    const policy = v ? policyOf(v.policy) : this.pool.settings.defaultPolicy;
    const shared = this.pool.sharedDomainsAllowed();
    const bsize = 4096;
    let total = usableSpace(disks, policy, shared).capacity;
    let free = usableSpace(
      disks.filter((d) => d.health === 'healthy'),
      policy,
      shared,
    ).free;
    let files = 1 << 30;
    let ffree = 1 << 30;
    if (v) {
      const u = this.quotas.usageOf(v.name);
      total = v.capacity;
      free = Math.min(free, Math.max(0, v.capacity - u.bytes));
      files = v.inodeLimit;
      ffree = Math.max(0, v.inodeLimit - u.inodes);
    }
    return {
      bsize,
      frsize: bsize,
      blocks: Math.floor(total / bsize),
      bfree: Math.floor(free / bsize),
      bavail: Math.floor(free / bsize),
      files,
      ffree,
      favail: ffree,
      fsid: 0,
      flag: 0,
      namemax: 255,
    };
  }

  async close(): Promise<void> {
    await this.data.close();
  }
}
