import { ROOT_INO, xattrCharge, type InodeRow } from '../metadata/store.js';
import { usableSpace } from '../pool/capacity.js';
import { policyOf } from '../data/extent-store.js';
import type { EngineConfig } from '../config/schema.js';
import type { MetadataStore } from '../metadata/store.js';
import { fsError } from '../util/errors.js';
import { FileData, fileDataOptionsFrom, type FileDataHost, type FileDataOptions, type OpenFile } from './file-data.js';
import { isDir, isReg, O_APPEND, S_IFDIR, S_IFREG } from './modes.js';
import { Namespace, POLICY_XATTR, type DirEntry, type NamespaceMetadata } from './namespace.js';
import { parentAndName } from './paths.js';
import { Quotas, type Quota, type QuotaMetadata } from './quota.js';

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
  /** Device number of a device node (0 otherwise). */
  rdev: number;
  /** Nanoseconds below the millisecond of atime and mtime (times set with utimensat come back exact). */
  atimeNs: number;
  mtimeNs: number;
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

/** A new entry: its attributes; with an open handle when it was created open. */
export interface Made {
  attr: Attr;
  fh?: number;
}

/** What setattr may change at once (what the kernel's SETATTR carries). */
export interface AttrChange {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  /** Times in whole milliseconds, with the nanoseconds below each (0 when not given). */
  atime?: number;
  atimeNs?: number;
  mtime?: number;
  mtimeNs?: number;
}

/**
 * The filesystem as FUSE (and tests) see it. The /dev/fuse path works on inodes: the kernel's node
 * id is the engine's inode number, every entry the kernel is given counts one reference (forget
 * drops them), and an inode whose last name goes lives on until its last reference and handle go
 * (then its extents are reclaimed; after a crash, at the next open). Path methods are a facade over
 * the same operations for fuse-native, the CLI and tests.
 */
export class FileSystem {
  readonly ns: Namespace;
  readonly data: FileData;
  /** Per-volume capacity and inode accounting (volume lifecycle is above, in volumes/). */
  readonly quotas: Quotas;
  private readonly handles = new Map<number, Handle>();
  private nextHandle = 1;
  /** The kernel's references to each inode (entries it was given minus what it forgot). */
  private readonly kernelRefs = new Map<number, number>();
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
    this.ns = new Namespace(pool.store, (ino) => this.data.isOpen(ino) || this.kernelRefs.has(ino) || this.hasHandle(ino));
    this.quotas = new Quotas(pool.store, (volume) => this.openOrphans(volume));
  }

  private hasHandle(ino: number): boolean {
    for (const h of this.handles.values()) if (h.ino === ino) return true;
    return false;
  }

  private attr(row: InodeRow): Attr {
    const of = this.data.get(row.ino);
    const size = of ? of.size : row.size;
    const mtime = of ? Math.max(of.mtime, row.mtime) : row.mtime;
    return {
      ino: row.ino,
      mode: row.mode,
      uid: row.uid,
      gid: row.gid,
      size,
      nlink: row.nlink,
      atime: row.atime,
      mtime,
      ctime: row.ctime,
      rdev: row.rdev,
      atimeNs: row.atime_ns,
      mtimeNs: mtime === row.mtime ? row.mtime_ns : 0,
      blocks: Math.ceil(size / 512),
      blksize: 4096,
    };
  }

  // ---- kernel references ----

  /** The kernel was given an entry for `ino` (LOOKUP, CREATE, MKNOD, ...): one more reference. */
  remember(ino: number): void {
    this.kernelRefs.set(ino, (this.kernelRefs.get(ino) ?? 0) + 1);
  }

  /** The kernel dropped `count` references (FORGET); an unlinked inode nothing holds is freed. */
  forget(ino: number, count: number): void {
    const left = (this.kernelRefs.get(ino) ?? 0) - count;
    if (left > 0) {
      this.kernelRefs.set(ino, left);
      return;
    }
    this.kernelRefs.delete(ino);
    if (this.ns.released(ino)) this.freedUnlinked(null);
  }

  /** Inodes the kernel holds references to (tests and status). */
  get kernelReferences(): number {
    return this.kernelRefs.size;
  }

  // ---- inode operations (the /dev/fuse path) ----

  getattrIno(ino: number): Attr {
    return this.attr(this.ns.inode(ino));
  }

  lookup(parent: number, name: string): Attr {
    return this.getattrIno(this.ns.lookup(parent, name));
  }

  entries(dir: number): DirEntry[] {
    return this.ns.entries(dir);
  }

  /** The volume that directory `dir` lies in, if any. */
  private volumeIn(dir: number): Quota | undefined {
    const top = this.ns.topOf(dir);
    return top === null ? undefined : this.quotas.ofRoot(top);
  }

  /** `top`: the top-level directory `ino` lies in, when the caller has it already. */
  private volumeOfInode(ino: number, top = this.ns.topOfInode(ino)): Quota | undefined {
    if (top !== null) return this.quotas.ofRoot(top);
    // No name left (unlinked, O_TMPFILE): the volume its open handles were charged to.
    for (const h of this.handles.values()) if (h.ino === ino && h.volume !== null) return this.quotas.get(h.volume);
    return undefined;
  }

  /** The path of entry `name` in `dir`, for the audit log (only computed when it is on). */
  private where(dir: number, name: string): () => string {
    return () => {
      const up = dir === ROOT_INO ? '' : (this.ns.pathsOf(dir)[0] ?? `<inode ${dir}>`);
      return `${up}/${name}`;
    };
  }

  /** A new inode in directory `dir` counts against its volume's inode limit first (EDQUOT past it); a failed `make` gives it back. */
  private newInodeIn<T>(dir: number, make: () => T): T {
    const v = this.volumeIn(dir);
    if (v) this.quotas.chargeInode(v.name);
    try {
      return make();
    } catch (err) {
      if (v) this.quotas.recount(v.name);
      throw err;
    }
  }

  private recountIn(dir: number): void {
    const v = this.volumeIn(dir);
    if (v) this.quotas.recount(v.name);
  }

  mkdirAt(parent: number, name: string, mode: number, owner: Owner = this.self): Attr {
    const ino = this.newInodeIn(parent, () => this.ns.makeAt(parent, name, S_IFDIR | (mode & 0o7777), owner.uid, owner.gid));
    this.changed('mkdir', this.where(parent, name), { mode });
    return this.getattrIno(ino);
  }

  mknodAt(parent: number, name: string, mode: number, rdev: number, owner: Owner = this.self): Attr {
    const ino = this.newInodeIn(parent, () => this.ns.mknodAt(parent, name, mode, rdev, owner.uid, owner.gid));
    this.changed('mknod', this.where(parent, name), { mode, rdev });
    return this.getattrIno(ino);
  }

  symlinkAt(parent: number, name: string, target: string, owner: Owner = this.self): Attr {
    const ino = this.newInodeIn(parent, () => this.ns.symlinkAt(parent, name, target, owner.uid, owner.gid));
    this.changed('symlink', this.where(parent, name), { target });
    return this.getattrIno(ino);
  }

  /** A new name for inode `ino` (a hard link, or the first name of an O_TMPFILE file). */
  linkAt(ino: number, parent: number, name: string): Attr {
    const from = this.volumeOfInode(ino)?.name ?? null;
    const to = this.volumeIn(parent)?.name ?? null;
    if (from !== to) throw fsError('EXDEV', `inode ${ino} and '${name}' are in different volumes`);
    // A hard link is a name the metadata keeps: it counts against the inode limit like a new file.
    // The first name of an O_TMPFILE file adds none: the unnamed inode was counted when it was made.
    if (this.ns.inode(ino).nlink === 0) this.ns.linkAt(ino, parent, name);
    else this.newInodeIn(parent, () => this.ns.linkAt(ino, parent, name));
    this.changed('link', this.where(parent, name), { ino });
    return this.getattrIno(ino);
  }

  createAt(parent: number, name: string, mode: number, flags: number, owner: Owner = this.self): Made {
    this.handleRoom(this.volumeIn(parent));
    const ino = this.newInodeIn(parent, () => this.ns.makeAt(parent, name, S_IFREG | (mode & 0o7777), owner.uid, owner.gid));
    this.changed('create', this.where(parent, name), { mode });
    const fh = this.openHandle(ino, flags, this.volumeIn(parent), this.ns.policyIn(parent));
    return { attr: this.getattrIno(ino), fh };
  }

  /** O_TMPFILE: an open regular file with no name in directory `parent` (linkat can name it). */
  tmpfileAt(parent: number, mode: number, flags: number, owner: Owner = this.self): Made {
    this.handleRoom(this.volumeIn(parent));
    const ino = this.newInodeIn(parent, () => this.ns.makeUnnamed(parent, mode, owner.uid, owner.gid));
    this.changed('tmpfile', this.where(parent, ''), { mode });
    const fh = this.openHandle(ino, flags, this.volumeIn(parent), this.ns.policyIn(parent));
    return { attr: this.getattrIno(ino), fh };
  }

  openIno(ino: number, flags: number): number {
    const row = this.ns.inode(ino);
    if (isDir(row.mode) && (flags & 3) !== 0) throw fsError('EISDIR', `inode ${ino} is a directory`);
    const top = this.ns.topOfInode(ino);
    return this.openHandle(ino, flags, this.volumeOfInode(ino, top), this.ns.policyOfTop(top));
  }

  unlinkAt(parent: number, name: string): void {
    this.ns.unlinkAt(parent, name);
    this.recountIn(parent);
    this.changed('unlink', this.where(parent, name));
    void this.pool.reapGarbage();
  }

  rmdirAt(parent: number, name: string): void {
    // A volume's root goes only with the volume (volumes/ calls removeVolumeRoot), never through the
    // mount: the volume's record would be left pointing at nothing, and a plain directory made under
    // its name later would be deleted with it.
    if (parent === ROOT_INO && this.quotas.get(name))
      throw fsError('EBUSY', `'${name}' is a volume; it is removed with the volume (dynamicfs volume delete), not rmdir`);
    this.removeDir(parent, name);
  }

  /** The root directory of volume `name`, emptied by the caller, goes (volume deletion). */
  removeVolumeRoot(name: string): void {
    this.removeDir(ROOT_INO, name);
  }

  private removeDir(parent: number, name: string): void {
    this.ns.rmdirAt(parent, name);
    this.recountIn(parent);
    this.changed('rmdir', this.where(parent, name));
  }

  renameAt(srcParent: number, srcName: string, dstParent: number, dstName: string, noReplace = false): void {
    const a = this.volumeIn(srcParent)?.name ?? null;
    const b = this.volumeIn(dstParent)?.name ?? null;
    if (a !== b) throw fsError('EXDEV', `'${srcName}' and '${dstName}' are in different volumes`);
    if ((srcParent === ROOT_INO && this.quotas.get(srcName)) || (dstParent === ROOT_INO && this.quotas.get(dstName)))
      throw fsError(
        'EBUSY',
        `'${srcParent === ROOT_INO && this.quotas.get(srcName) ? srcName : dstName}' is a volume; volumes are not renamed`,
      );
    this.ns.renameAt(srcParent, srcName, dstParent, dstName, noReplace);
    this.recountIn(dstParent);
    this.changed('rename', this.where(srcParent, srcName), { to: this.where(dstParent, dstName)() });
    void this.pool.reapGarbage();
  }

  readlinkIno(ino: number): string {
    return this.ns.readlinkIno(ino);
  }

  /** SETATTR: what `change` holds, in the order chmod, chown, times, size; the new attributes. */
  async setattrIno(ino: number, change: AttrChange, fh?: number): Promise<Attr> {
    this.changeAttrs(ino, change);
    if (change.size !== undefined) {
      if (fh !== undefined && this.handles.has(fh)) await this.ftruncate(fh, change.size);
      else await this.truncateIno(ino, change.size);
    }
    return fh !== undefined && this.handles.has(fh) ? this.fgetattr(fh) : this.getattrIno(ino);
  }

  /** Mode, owner and times (what changes at once, without waiting for data). */
  private changeAttrs(ino: number, change: AttrChange): void {
    if (change.mode !== undefined) {
      this.ns.chmodIno(ino, change.mode);
      this.changed('chmod', () => this.ns.describe(ino), { mode: change.mode });
    }
    if (change.uid !== undefined || change.gid !== undefined) {
      this.ns.chownIno(ino, change.uid ?? -1, change.gid ?? -1);
      this.changed('chown', () => this.ns.describe(ino), { uid: change.uid, gid: change.gid });
    }
    if (change.atime !== undefined || change.mtime !== undefined) {
      const cur = this.getattrIno(ino);
      this.utimensIno(
        ino,
        change.atime ?? cur.atime,
        change.mtime ?? cur.mtime,
        change.atime !== undefined ? (change.atimeNs ?? 0) : cur.atimeNs,
        change.mtime !== undefined ? (change.mtimeNs ?? 0) : cur.mtimeNs,
      );
    }
  }

  async truncateIno(ino: number, size: number): Promise<void> {
    const row = this.ns.inode(ino);
    if (isDir(row.mode)) throw fsError('EISDIR', `inode ${ino} is a directory`);
    if (!isReg(row.mode)) throw fsError('EINVAL', `inode ${ino} is not a regular file`);
    this.checkSize(size);
    this.chargeResize(this.volumeOfInode(ino)?.name ?? null, ino, size);
    await this.data.truncate(ino, size);
    this.changed('truncate', () => this.ns.describe(ino), { size });
  }

  utimensIno(ino: number, atime: number, mtime: number, atimeNs = 0, mtimeNs = 0): void {
    const of = this.data.get(ino);
    if (of) of.mtime = mtime;
    this.ns.utimens(ino, atime, mtime, atimeNs, mtimeNs);
    this.pool.scheduleMirror();
  }

  setxattrIno(ino: number, name: string, value: Buffer, flags: number, caller?: Owner): void {
    if (name === POLICY_XATTR) this.mayChangePolicy(ino, caller);
    const v = this.volumeOfInode(ino);
    if (v && name !== POLICY_XATTR) {
      const before = this.pool.store.xattrBytes(ino, name);
      const after = xattrCharge(name, value.length);
      if (after > before) this.quotas.charge(v.name, after - before);
      else this.quotas.recount(v.name);
    }
    try {
      this.ns.setxattrIno(ino, name, value, flags);
    } catch (err) {
      if (v) this.quotas.recount(v.name);
      throw err;
    }
    this.changed('setxattr', () => this.ns.describe(ino), { name });
  }

  getxattrIno(ino: number, name: string): Buffer {
    return this.ns.getxattrIno(ino, name);
  }

  listxattrIno(ino: number): string[] {
    return this.ns.listxattrIno(ino);
  }

  removexattrIno(ino: number, name: string, caller?: Owner): void {
    if (name === POLICY_XATTR) this.mayChangePolicy(ino, caller);
    this.ns.removexattrIno(ino, name);
    const v = this.volumeOfInode(ino);
    if (v) this.quotas.recount(v.name);
    this.changed('removexattr', () => this.ns.describe(ino), { name });
  }

  statfsIno(ino: number): FsStats {
    return this.statfsOf(this.volumeOfInode(ino));
  }

  // ---- path facade (fuse-native, the CLI, volumes/, tests) ----

  private parentOf(p: string): { dir: number; name: string } {
    const { parentPath, name } = parentAndName(p);
    return { dir: this.ns.resolve(parentPath), name };
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
    const { dir, name } = this.parentOf(p);
    this.mkdirAt(dir, name, mode, owner);
  }

  rmdir(p: string): void {
    const { dir, name } = this.parentOf(p);
    this.rmdirAt(dir, name);
  }

  create(p: string, mode: number, flags = 2, owner: Owner = this.self): number {
    const { dir, name } = this.parentOf(p);
    return this.createAt(dir, name, mode, flags, owner).fh as number;
  }

  open(p: string, flags: number): number {
    return this.openIno(this.ns.resolve(p), flags);
  }

  unlink(p: string): void {
    const { dir, name } = this.parentOf(p);
    this.unlinkAt(dir, name);
  }

  rename(src: string, dst: string): void {
    const s = this.parentOf(src);
    const d = this.parentOf(dst);
    this.renameAt(s.dir, s.name, d.dir, d.name);
  }

  link(src: string, dst: string): void {
    const ino = this.ns.resolve(src);
    const { dir, name } = this.parentOf(dst);
    this.linkAt(ino, dir, name);
  }

  mknod(p: string, mode: number, owner: Owner = this.self, rdev = 0): void {
    const { dir, name } = this.parentOf(p);
    this.mknodAt(dir, name, mode, rdev, owner);
  }

  symlink(target: string, p: string, owner: Owner = this.self): void {
    const { dir, name } = this.parentOf(p);
    this.symlinkAt(dir, name, target, owner);
  }

  readlink(p: string): string {
    return this.ns.readlink(p);
  }

  chmod(p: string, mode: number): void {
    this.changeAttrs(this.ns.resolve(p), { mode });
  }

  chown(p: string, uid: number, gid: number): void {
    this.changeAttrs(this.ns.resolve(p), { uid, gid });
  }

  utimens(p: string, atime: number, mtime: number): void {
    this.utimensIno(this.ns.resolve(p), atime, mtime);
  }

  async truncate(p: string, size: number): Promise<void> {
    await this.truncateIno(this.ns.resolve(p), size);
  }

  /**
   * `caller`: who asks through the mount (unknown through fuse-native). Extended attributes are
   * charged to their volume, and the policy attribute is the volume's, never a process's inside it.
   */
  setxattr(p: string, name: string, value: Buffer, flags: number, caller?: Owner): void {
    this.setxattrIno(this.ns.resolve(p), name, value, flags, caller);
  }
  getxattr(p: string, name: string): Buffer {
    return this.ns.getxattr(p, name);
  }
  listxattr(p: string): string[] {
    return this.ns.listxattr(p);
  }
  removexattr(p: string, name: string, caller?: Owner): void {
    this.removexattrIno(this.ns.resolve(p), name, caller);
  }

  /** Inside a volume (`p` given), its capacity and inode limit, as `df` in a pod should show them. */
  statfs(p?: string): FsStats {
    return this.statfsOf(p === undefined ? undefined : this.quotas.of(p));
  }

  // ---- handles and data ----

  /** After a namespace change: the audit log (when it is on) and, once changes settle, the metadata mirrors. */
  private changed(op: string, target: () => string, detail?: Record<string, unknown>): void {
    this.pool.scheduleMirror();
    if (this.onAudit) this.onAudit(op, target(), detail);
  }

  private handle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (!h) throw fsError('EBADF', `no open handle ${fh}`);
    return h;
  }

  /** EMFILE when no handle may be opened (in `volume`): checked before a create makes anything. */
  private handleRoom(volume: Quota | undefined): void {
    if (this.handles.size >= this.maxOpenFiles)
      throw fsError('EMFILE', `${this.handles.size} files open (security.max_open_files is ${this.maxOpenFiles})`);
    // One volume cannot take every handle of the pool from the others.
    const held = volume ? (this.openPerVolume.get(volume.name) ?? 0) : 0;
    if (volume && held >= this.maxOpenPerVolume)
      throw fsError(
        'EMFILE',
        `volume ${volume.name} has ${held} files open (security.max_open_files_per_volume is ${this.maxOpenPerVolume})`,
      );
  }

  private openHandle(ino: number, flags: number, volume: Quota | undefined, policy: string | null): number {
    this.handleRoom(volume);
    const row = this.ns.inode(ino);
    if (volume) this.openPerVolume.set(volume.name, (this.openPerVolume.get(volume.name) ?? 0) + 1);
    const file = isReg(row.mode) ? this.data.acquire(ino, row.size, row.mtime, policy, volume?.tier ?? null) : null;
    const fh = this.nextHandle++;
    this.handles.set(fh, { ino, flags, file, volume: volume?.name ?? null, errorsSeen: file?.reported ?? 0 });
    return fh;
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
    // Still open through another handle: nothing to free, no metadata to read.
    const last = h.file ? await this.data.release(h.file) : true;
    if (last && this.ns.released(h.ino)) this.freedUnlinked(h.volume);
  }

  /**
   * An unlinked inode was freed (last handle closed, or the kernel forgot it): its bytes and inode
   * stop counting against its volume (`null`: not known, every volume counts again), and its
   * fragments are reaped now.
   */
  private freedUnlinked(volume: string | null): void {
    if (volume !== null) this.quotas.recount(volume);
    else for (const v of this.quotas.list()) this.quotas.recount(v.name);
    void this.pool.reapGarbage();
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

  private checkSize(size: number): void {
    if (size > this.maxFileSize) throw fsError('EFBIG', `size ${size} passes storage.max_file_size (${this.maxFileSize})`);
  }

  /**
   * A volume's policy is set through CSI or the CLI: a process inside the volume (any uid of a pod)
   * must not raise it past what was reserved, or lower it. A plain top-level directory's policy may
   * be set through the mount by its owner or root.
   */
  private mayChangePolicy(ino: number, caller: Owner | undefined): void {
    const v = this.volumeOfInode(ino);
    if (v)
      throw fsError(
        'EPERM',
        `the redundancy policy of volume ${v.name} is the volume's: change it with the CLI or through CSI, not through ${POLICY_XATTR}`,
      );
    if (caller && caller.uid !== 0 && caller.uid !== this.ns.inode(ino).uid)
      throw fsError('EPERM', `only the owner of ${this.ns.describe(ino)} or root may set its redundancy policy`);
  }

  /**
   * Capacity as a user can fill it: raw bytes of usable disks scaled by the default policy's overhead.
   * Inside a volume (`v` given), its capacity and inode limit.
   */
  private statfsOf(v: Quota | undefined): FsStats {
    // Inside a volume: its own policy and tier decide what the disks can still take.
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
