import { ROOT_INO, type InodeRow, type MetadataStore } from '../metadata/store.js';
import { parsePolicy } from '../redundancy/policy.js';
import { fsError, UsageError } from '../util/errors.js';
import {
  isDir,
  isLink,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  S_ISGID,
  XATTR_CREATE,
  XATTR_REPLACE,
} from './modes.js';
import { checkName, parentAndName, splitPath } from './paths.js';
import { nameByteLength, printableName } from '../util/byte-names.js';

export const POLICY_XATTR = 'user.dynamicfs.policy';
const CAPABILITY_XATTR = 'security.capability';
/**
 * POSIX ACLs (system.posix_acl_access, system.posix_acl_default) are refused with EOPNOTSUPP, as
 * ext4 mounted noacl does. libfuse 2 cannot ask the kernel to enforce them (FUSE_POSIX_ACL), so a
 * stored ACL would be shown by getfacl and ignored by permission checks. Tools treat EOPNOTSUPP as
 * "no ACLs here": `cp -a` and `cp -p` then apply the mode with chmod. Stored as a plain xattr, the
 * ACL that cp sends instead of a chmod left every copied file at the mode it was created with.
 */
const ACL_PREFIX = 'system.posix_acl_';

function refuseAcl(name: string): void {
  if (name.startsWith(ACL_PREFIX))
    throw fsError('EOPNOTSUPP', `POSIX ACLs are not supported (${name}): permissions are the mode bits, set with chmod`);
}

/**
 * Directory tree, inodes and xattrs, all in metadata. Every method is one SQLite transaction, so
 * a crash never leaves an operation half applied (rename included).
 */
/** The namespace tables the namespace reads and writes. */
export type NamespaceMetadata = Pick<
  MetadataStore,
  | 'anyXattrNamed'
  | 'childCount'
  | 'childEntries'
  | 'children'
  | 'deleteDirent'
  | 'freeInode'
  | 'getXattr'
  | 'inode'
  | 'insertDirent'
  | 'insertInode'
  | 'listXattrs'
  | 'lookup'
  | 'parentsOf'
  | 'removeXattr'
  | 'setMode'
  | 'setNlink'
  | 'setOwner'
  | 'setPolicy'
  | 'setCtime'
  | 'setTimes'
  | 'setXattr'
  | 'touchDir'
  | 'tx'
>;

/** One directory entry as readdir reports it. */
export interface DirEntry {
  name: string;
  ino: number;
  mode: number;
}

export class Namespace {
  private readonly cache = new Map<string, number>();
  /** Directory inode -> the top-level directory it lies in (policy and volume); dropped when directories move. */
  private readonly tops = new Map<number, number>();

  constructor(
    private readonly store: NamespaceMetadata,
    /**
     * True while something still holds inode `ino` (an open handle, or the kernel's references):
     * an inode whose last name goes then lives on, unlinked, until released.
     */
    private readonly inUse: (ino: number) => boolean,
  ) {}

  resolve(p: string): number {
    const hit = this.cache.get(p);
    if (hit !== undefined) return hit;
    const parts = splitPath(p);
    let ino = ROOT_INO;
    for (let i = 0; i < parts.length; i++) {
      const next = this.store.lookup(ino, parts[i]);
      if (next === undefined) {
        if (i > 0) {
          const cur = this.store.inode(ino);
          if (cur && !isDir(cur.mode)) throw fsError('ENOTDIR', `'${parts.slice(0, i).join('/')}' is not a directory`);
        }
        throw fsError('ENOENT', `no such file or directory: ${p}`);
      }
      ino = next;
    }
    if (parts.length > 0) this.cache.set(p, ino);
    return ino;
  }

  inode(ino: number): InodeRow {
    const row = this.store.inode(ino);
    if (!row) throw fsError('ENOENT', `inode ${ino} is gone`);
    return row;
  }

  stat(p: string): InodeRow {
    return this.inode(this.resolve(p));
  }

  /** The inode named `name` in directory `parent`. */
  lookup(parent: number, name: string): number {
    const ino = this.store.lookup(parent, name);
    if (ino !== undefined) return ino;
    // A miss: say why (the parent is no directory, the name is malformed, or it is just not there).
    this.dir(parent);
    checkName(name);
    throw fsError('ENOENT', `no entry '${printableName(name)}' in directory inode ${parent}`);
  }

  private dir(ino: number): InodeRow {
    const row = this.inode(ino);
    if (!isDir(row.mode)) throw fsError('ENOTDIR', `inode ${ino} is not a directory`);
    return row;
  }

  /**
   * A directory new entries may go into: a removed one (nlink 0, still held by someone: a shell's
   * working directory, a volume deleted under a process) refuses them with ENOENT, as ext4 does; an
   * entry made there would outlive its parent, unreachable.
   */
  private liveDir(ino: number): InodeRow {
    const row = this.dir(ino);
    if (row.nlink <= 0) throw fsError('ENOENT', `directory inode ${ino} was removed`);
    return row;
  }

  private dirIno(p: string): number {
    const ino = this.resolve(p);
    this.dir(ino);
    return ino;
  }

  private invalidate(): void {
    this.cache.clear();
  }

  readdir(p: string): string[] {
    const ino = this.dirIno(p);
    return ['.', '..', ...this.store.children(ino).map((c) => c.name)];
  }

  /** The entries of directory `ino` with their inodes and types ('.' and '..' included). */
  entries(ino: number): DirEntry[] {
    const dir = this.dir(ino);
    const up = ino === ROOT_INO ? ROOT_INO : (this.store.parentsOf(ino)[0]?.parent ?? ino);
    return [{ name: '.', ino, mode: dir.mode }, { name: '..', ino: up, mode: S_IFDIR }, ...this.store.childEntries(ino)];
  }

  /**
   * The top-level directory that directory `dir` lies in (itself when it is one), or null for the
   * root. A volume is a top-level directory; a redundancy policy is set on one.
   */
  topOf(dir: number): number | null {
    if (dir === ROOT_INO) return null;
    const hit = this.tops.get(dir);
    if (hit !== undefined) return hit;
    // Walk up to the first directory whose top is known (or a child of the root), then remember the
    // answer for every directory on the way: each directory is walked once, however deep the tree.
    const path: number[] = [];
    let cur = dir;
    let top: number | null = null;
    for (;;) {
      const known = this.tops.get(cur);
      if (known !== undefined) {
        top = known;
        break;
      }
      path.push(cur);
      const up = this.store.parentsOf(cur)[0];
      if (!up) break; // an unlinked directory: in no volume any more
      if (up.parent === ROOT_INO) {
        top = cur;
        break;
      }
      cur = up.parent;
    }
    if (top !== null) for (const d of path) this.tops.set(d, top);
    return top;
  }

  /** The top-level directory a file or directory `ino` lies in (by its first name), or null. */
  topOfInode(ino: number): number | null {
    const row = this.store.inode(ino);
    if (!row) return null;
    if (isDir(row.mode)) return this.topOf(ino);
    const up = this.store.parentsOf(ino)[0];
    return up ? this.topOf(up.parent) : null;
  }

  /** The redundancy policy for new data in directory `dir`: its top-level directory's, else null. */
  policyIn(dir: number): string | null {
    return this.policyOfTop(this.topOf(dir));
  }

  /** The policy set on top-level directory `top` (null: none there, or no top: the pool default). */
  policyOfTop(top: number | null): string | null {
    return top === null ? null : (this.store.inode(top)?.policy ?? null);
  }

  private newInodeRow(parent: number, mode: number, uid: number, gid: number, nlink: number, extra: Partial<InodeRow>) {
    // In a set-group-ID directory new entries take its group, and new directories its bit (POSIX).
    const dir = this.inode(parent);
    if (dir.mode & S_ISGID) {
      gid = dir.gid;
      if (isDir(mode)) mode |= S_ISGID;
    }
    const now = Date.now();
    return {
      mode,
      uid,
      gid,
      size: 0,
      nlink,
      atime: now,
      mtime: now,
      ctime: now,
      target: null,
      policy: null,
      rdev: 0,
      atime_ns: 0,
      mtime_ns: 0,
      ...extra,
    };
  }

  /** A new entry `name` in directory `parent`: its inode. */
  makeAt(parent: number, name: string, mode: number, uid: number, gid: number, extra: Partial<InodeRow> = {}): number {
    this.liveDir(parent);
    checkName(name);
    return this.store.tx(() => {
      if (this.store.lookup(parent, name) !== undefined) throw fsError('EEXIST', `'${name}' already exists in directory inode ${parent}`);
      const row = this.newInodeRow(parent, mode, uid, gid, isDir(mode) ? 2 : 1, extra);
      const ino = this.store.insertInode(row);
      this.store.insertDirent(parent, name, ino);
      if (isDir(mode)) this.store.setNlink(parent, this.inode(parent).nlink + 1, row.ctime);
      this.store.touchDir(parent, row.ctime);
      return ino;
    });
  }

  /**
   * O_TMPFILE: a regular file with no name (nlink 0) in directory `parent`. It lives while it is
   * open; a hard link (linkat) can give it a name. A crash before that reclaims it at the next open.
   */
  makeUnnamed(parent: number, mode: number, uid: number, gid: number): number {
    this.liveDir(parent);
    return this.store.insertInode(this.newInodeRow(parent, S_IFREG | (mode & 0o7777), uid, gid, 0, {}));
  }

  private makePath(p: string, mode: number, uid: number, gid: number, extra: Partial<InodeRow> = {}): number {
    const { parentPath, name } = parentAndName(p);
    return this.makeAt(this.dirIno(parentPath), name, mode, uid, gid, extra);
  }

  mkdir(p: string, mode: number, uid: number, gid: number): number {
    return this.makePath(p, S_IFDIR | (mode & 0o7777), uid, gid);
  }

  createFile(p: string, mode: number, uid: number, gid: number): number {
    return this.makePath(p, S_IFREG | (mode & 0o7777), uid, gid);
  }

  /**
   * mknod(2): a FIFO, a Unix socket (what bind(2) creates; MySQL keeps its socket in its data
   * directory), a device node with its number, or an empty regular file. The kernel serves FIFOs,
   * sockets and devices itself; we keep their names and numbers. The pool is mounted nodev, so a
   * stored device node is never opened as a device through it (backups and container layers hold them).
   */
  mknodAt(parent: number, name: string, mode: number, rdev: number, uid: number, gid: number): number {
    const type = mode & S_IFMT || S_IFREG;
    const perms = mode & 0o7777;
    if (type === S_IFIFO || type === S_IFSOCK || type === S_IFREG) return this.makeAt(parent, name, type | perms, uid, gid);
    if (type === S_IFCHR || type === S_IFBLK) return this.makeAt(parent, name, type | perms, uid, gid, { rdev });
    throw fsError('EINVAL', `mknod with file type 0${type.toString(8)}: '${name}'`);
  }

  mknod(p: string, mode: number, uid: number, gid: number, rdev = 0): number {
    const { parentPath, name } = parentAndName(p);
    return this.mknodAt(this.dirIno(parentPath), name, mode, rdev, uid, gid);
  }

  symlinkAt(parent: number, name: string, target: string, uid: number, gid: number): number {
    return this.makeAt(parent, name, S_IFLNK | 0o777, uid, gid, { target, size: nameByteLength(target) });
  }

  symlink(target: string, p: string, uid: number, gid: number): number {
    return this.makePath(p, S_IFLNK | 0o777, uid, gid, { target, size: nameByteLength(target) });
  }

  readlinkIno(ino: number): string {
    const row = this.inode(ino);
    if (!isLink(row.mode) || row.target === null) throw fsError('EINVAL', `inode ${ino} is not a symbolic link`);
    return row.target;
  }

  readlink(p: string): string {
    return this.readlinkIno(this.resolve(p));
  }

  /** Frees inode `ino` now if it has no name left and nothing holds it. Call inside tx. */
  private freeIfUnused(ino: number): void {
    const row = this.store.inode(ino);
    if (row && row.nlink <= 0 && !this.inUse(ino)) this.store.freeInode(ino);
  }

  /** Drops one link of `ino`; frees it if that was the last and nothing holds it. Call inside tx. */
  private dropLink(ino: number, now: number): void {
    const row = this.inode(ino);
    this.store.setNlink(ino, Math.max(0, row.nlink - 1), now);
    this.freeIfUnused(ino);
  }

  /** Something that held `ino` let go: an unlinked inode nothing holds any more is freed. */
  released(ino: number): boolean {
    const row = this.store.inode(ino);
    if (!row || row.nlink > 0 || this.inUse(ino)) return false;
    this.store.tx(() => this.store.freeInode(ino));
    return true;
  }

  unlinkAt(parent: number, name: string): number {
    const ino = this.lookup(parent, name);
    if (isDir(this.inode(ino).mode)) throw fsError('EISDIR', `'${name}' is a directory`);
    this.store.tx(() => {
      const now = Date.now();
      this.store.deleteDirent(parent, name);
      this.dropLink(ino, now);
      this.store.touchDir(parent, now);
    });
    this.invalidate();
    return ino;
  }

  unlink(p: string): number {
    const { parentPath, name } = parentAndName(p);
    return this.unlinkAt(this.dirIno(parentPath), name);
  }

  rmdirAt(parent: number, name: string): number {
    const ino = this.lookup(parent, name);
    this.dir(ino);
    if (this.store.childCount(ino) > 0) throw fsError('ENOTEMPTY', `directory '${name}' is not empty`);
    this.store.tx(() => {
      const now = Date.now();
      this.store.deleteDirent(parent, name);
      // A removed directory someone still holds (a shell's working directory) stays, empty, until let go.
      this.store.setNlink(ino, 0, now);
      this.freeIfUnused(ino);
      this.store.setNlink(parent, this.inode(parent).nlink - 1, now);
      this.store.touchDir(parent, now);
    });
    this.invalidate();
    this.tops.delete(ino);
    return ino;
  }

  rmdir(p: string): number {
    const { parentPath, name } = parentAndName(p);
    return this.rmdirAt(this.dirIno(parentPath), name);
  }

  /** Renames; returns the inode a replaced destination name had, if any. */
  renameAt(srcParent: number, srcName: string, dstParent: number, dstName: string, noReplace = false): number | undefined {
    this.liveDir(dstParent);
    checkName(dstName);
    const ino = this.lookup(srcParent, srcName);
    const srcRow = this.inode(ino);
    const srcIsDir = isDir(srcRow.mode);
    const existing = this.store.lookup(dstParent, dstName);
    if (existing !== undefined && noReplace) throw fsError('EEXIST', `'${dstName}' already exists`);
    // Two names of one file: POSIX says rename does nothing.
    if (existing === ino) return undefined;
    if (srcIsDir) {
      // A directory cannot move below itself.
      for (let cur = dstParent; cur !== ROOT_INO;) {
        if (cur === ino) throw fsError('EINVAL', `cannot move '${srcName}' into its own subtree ('${dstName}')`);
        const up = this.store.parentsOf(cur)[0];
        if (!up) break;
        cur = up.parent;
      }
    }
    let existingIsDir = false;
    if (existing !== undefined) {
      existingIsDir = isDir(this.inode(existing).mode);
      if (existingIsDir && !srcIsDir) throw fsError('EISDIR', `'${dstName}' is a directory`);
      if (!existingIsDir && srcIsDir) throw fsError('ENOTDIR', `'${dstName}' is not a directory`);
      if (existingIsDir && this.store.childCount(existing) > 0) throw fsError('ENOTEMPTY', `directory '${dstName}' is not empty`);
    }
    this.store.tx(() => {
      const now = Date.now();
      if (existing !== undefined) {
        this.store.deleteDirent(dstParent, dstName);
        if (existingIsDir) {
          this.store.setNlink(existing, 0, now);
          this.freeIfUnused(existing);
          this.store.setNlink(dstParent, this.inode(dstParent).nlink - 1, now);
        } else {
          this.dropLink(existing, now);
        }
      }
      this.store.deleteDirent(srcParent, srcName);
      this.store.insertDirent(dstParent, dstName, ino);
      if (srcIsDir && srcParent !== dstParent) {
        this.store.setNlink(srcParent, this.inode(srcParent).nlink - 1, now);
        this.store.setNlink(dstParent, this.inode(dstParent).nlink + 1, now);
      }
      this.store.setCtime(ino, now);
      this.store.touchDir(srcParent, now);
      this.store.touchDir(dstParent, now);
    });
    this.invalidate();
    if (srcIsDir) this.tops.clear();
    return existing;
  }

  rename(src: string, dst: string): number | undefined {
    const s = parentAndName(src);
    const d = parentAndName(dst);
    return this.renameAt(this.dirIno(s.parentPath), s.name, this.dirIno(d.parentPath), d.name);
  }

  /** A new name `name` in `parent` for inode `ino` (also for an unnamed O_TMPFILE inode). */
  linkAt(ino: number, parent: number, name: string): void {
    const row = this.inode(ino);
    if (isDir(row.mode)) throw fsError('EPERM', `inode ${ino} is a directory; directories cannot be hard-linked`);
    this.liveDir(parent);
    checkName(name);
    this.store.tx(() => {
      if (this.store.lookup(parent, name) !== undefined) throw fsError('EEXIST', `'${name}' already exists`);
      const now = Date.now();
      this.store.insertDirent(parent, name, ino);
      this.store.setNlink(ino, this.inode(ino).nlink + 1, now);
      this.store.touchDir(parent, now);
    });
  }

  link(src: string, dst: string): void {
    const ino = this.resolve(src);
    const { parentPath, name } = parentAndName(dst);
    this.linkAt(ino, this.dirIno(parentPath), name);
  }

  chmodIno(ino: number, mode: number): void {
    const row = this.inode(ino);
    this.store.setMode(ino, (row.mode & ~0o7777) | (mode & 0o7777), Date.now());
  }

  chmod(p: string, mode: number): void {
    this.chmodIno(this.resolve(p), mode);
  }

  chownIno(ino: number, uid: number, gid: number): void {
    const row = this.inode(ino);
    // -1 (as unsigned 32-bit) leaves that id unchanged.
    const keep = (v: number, cur: number) => (v === -1 || v === 0xffffffff ? cur : v);
    this.store.setOwner(ino, keep(uid, row.uid), keep(gid, row.gid), Date.now());
  }

  chown(p: string, uid: number, gid: number): void {
    this.chownIno(this.resolve(p), uid, gid);
  }

  /** Times in whole milliseconds, with the nanoseconds below each. */
  utimens(ino: number, atime: number, mtime: number, atimeNs = 0, mtimeNs = 0): void {
    this.store.setTimes(ino, atime, mtime, Date.now(), atimeNs, mtimeNs);
  }

  setxattrIno(ino: number, name: string, value: Buffer, flags: number): void {
    refuseAcl(name);
    const exists = this.store.getXattr(ino, name) !== undefined;
    if (flags & XATTR_CREATE && exists) throw fsError('EEXIST', `xattr ${name} already exists on inode ${ino}`);
    if (flags & XATTR_REPLACE && !exists) throw fsError('ENODATA', `xattr ${name} does not exist on inode ${ino}`);
    if (name === POLICY_XATTR) {
      const text = value.toString('utf8').replace(/\0+$/, '').trim();
      this.setPolicyIno(ino, text);
      return;
    }
    this.store.tx(() => {
      this.store.setXattr(ino, name, value);
      // An attribute change is an inode change: ctime moves, as on ext4 (backup tools look at it).
      this.store.setCtime(ino, Date.now());
    });
    if (name === CAPABILITY_XATTR) this.capabilitiesSet = true;
  }

  setxattr(p: string, name: string, value: Buffer, flags: number): void {
    this.setxattrIno(this.resolve(p), name, value, flags);
  }

  /** Sets the redundancy policy of a top-level directory (null: back to the pool default). */
  setPolicy(p: string, text: string | null): void {
    this.setPolicyIno(this.resolve(p), text);
  }

  setPolicyIno(ino: number, text: string | null): void {
    if (!isDir(this.inode(ino).mode) || this.topOf(ino) !== ino) {
      throw fsError('EINVAL', `a redundancy policy can only be set on a top-level directory, not on ${this.describe(ino)}`);
    }
    if (text !== null) {
      try {
        parsePolicy(text);
      } catch (err) {
        throw fsError('EINVAL', err instanceof UsageError ? err.message : String(err));
      }
    }
    this.store.tx(() => {
      this.store.setPolicy(ino, text);
      if (text === null) this.store.removeXattr(ino, POLICY_XATTR);
      else this.store.setXattr(ino, POLICY_XATTR, Buffer.from(text));
    });
  }

  /** How a message names inode `ino`: its first path, else its number. */
  describe(ino: number): string {
    const p = ino === ROOT_INO ? '/' : this.pathsOf(ino)[0];
    return p === undefined ? `inode ${ino}` : `'${printableName(p)}'`;
  }

  /**
   * The kernel asks for security.capability before every write(2) to a FUSE file. Until some file
   * has one, answer without a query.
   */
  private capabilitiesSet: boolean | null = null;

  getxattrIno(ino: number, name: string): Buffer {
    refuseAcl(name);
    if (name === CAPABILITY_XATTR) {
      this.capabilitiesSet ??= this.store.anyXattrNamed(CAPABILITY_XATTR);
      if (!this.capabilitiesSet) throw fsError('ENODATA', `no xattr ${name} on inode ${ino}`);
    }
    const v = this.store.getXattr(ino, name);
    if (v === undefined) throw fsError('ENODATA', `no xattr ${name} on inode ${ino}`);
    return v;
  }

  getxattr(p: string, name: string): Buffer {
    if (name === CAPABILITY_XATTR && this.capabilitiesSet === false) throw fsError('ENODATA', `no xattr ${name} on '${p}'`);
    return this.getxattrIno(this.resolve(p), name);
  }

  listxattrIno(ino: number): string[] {
    this.inode(ino);
    // An ACL stored as a plain xattr by an older version is left in place, unlisted.
    return this.store.listXattrs(ino).filter((n) => !n.startsWith(ACL_PREFIX));
  }

  listxattr(p: string): string[] {
    return this.listxattrIno(this.resolve(p));
  }

  removexattrIno(ino: number, name: string): void {
    refuseAcl(name);
    if (name === POLICY_XATTR) {
      this.setPolicyIno(ino, null);
      return;
    }
    if (!this.store.removeXattr(ino, name)) throw fsError('ENODATA', `no xattr ${name} on inode ${ino}`);
    this.store.setCtime(ino, Date.now());
  }

  removexattr(p: string, name: string): void {
    this.removexattrIno(this.resolve(p), name);
  }

  /** Paths that lead to `ino` (for reports naming files): one per hard link, walked without recursion. */
  pathsOf(ino: number): string[] {
    const out: string[] = [];
    for (const ent of this.store.parentsOf(ino)) {
      const parts = [ent.name];
      let cur = ent.parent;
      let reachable = true;
      while (cur !== ROOT_INO) {
        const up = this.store.parentsOf(cur)[0];
        if (!up) {
          reachable = false;
          break;
        }
        parts.push(up.name);
        cur = up.parent;
      }
      if (reachable) out.push('/' + parts.reverse().join('/'));
    }
    return out;
  }
}
