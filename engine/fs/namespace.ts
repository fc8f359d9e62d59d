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
import { parentAndName, splitPath } from './paths.js';

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
  | 'setTimes'
  | 'setXattr'
  | 'touchDir'
  | 'tx'
>;

export class Namespace {
  private readonly cache = new Map<string, number>();

  constructor(
    private readonly store: NamespaceMetadata,
    /** Called for inodes whose last link went away; returns true if data was freed now. */
    private readonly isOpen: (ino: number) => boolean,
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

  private dirIno(p: string): number {
    const ino = this.resolve(p);
    if (!isDir(this.inode(ino).mode)) throw fsError('ENOTDIR', `'${p}' is not a directory`);
    return ino;
  }

  private invalidate(): void {
    this.cache.clear();
  }

  readdir(p: string): string[] {
    const ino = this.dirIno(p);
    return ['.', '..', ...this.store.children(ino).map((c) => c.name)];
  }

  /** The redundancy policy for new data under `p`: its top-level directory's, else null (pool default). */
  policyFor(p: string): string | null {
    const parts = splitPath(p);
    if (parts.length < 2) return null;
    const top = this.store.lookup(ROOT_INO, parts[0]);
    return top === undefined ? null : (this.store.inode(top)?.policy ?? null);
  }

  private create(p: string, mode: number, uid: number, gid: number, extra: Partial<InodeRow> = {}): number {
    const { parentPath, name } = parentAndName(p);
    const parent = this.dirIno(parentPath);
    return this.store.tx(() => {
      if (this.store.lookup(parent, name) !== undefined) throw fsError('EEXIST', `'${p}' already exists`);
      // In a set-group-ID directory new entries take its group, and new directories its bit (POSIX).
      const dir = this.inode(parent);
      if (dir.mode & S_ISGID) {
        gid = dir.gid;
        if (isDir(mode)) mode |= S_ISGID;
      }
      const now = Date.now();
      const ino = this.store.insertInode({
        mode,
        uid,
        gid,
        size: 0,
        nlink: isDir(mode) ? 2 : 1,
        atime: now,
        mtime: now,
        ctime: now,
        target: null,
        policy: null,
        ...extra,
      });
      this.store.insertDirent(parent, name, ino);
      if (isDir(mode)) this.store.setNlink(parent, this.inode(parent).nlink + 1, now);
      this.store.touchDir(parent, now);
      return ino;
    });
  }

  mkdir(p: string, mode: number, uid: number, gid: number): number {
    return this.create(p, S_IFDIR | (mode & 0o7777), uid, gid);
  }

  createFile(p: string, mode: number, uid: number, gid: number): number {
    return this.create(p, S_IFREG | (mode & 0o7777), uid, gid);
  }

  /**
   * mknod(2): a FIFO, a Unix socket (what bind(2) creates; MySQL keeps its socket in its data
   * directory) or an empty regular file. The kernel serves FIFOs and sockets itself; we keep their
   * names. Device nodes are refused, as on a nodev mount: nothing here could keep their numbers.
   */
  mknod(p: string, mode: number, uid: number, gid: number): number {
    const type = mode & S_IFMT || S_IFREG;
    if (type === S_IFIFO || type === S_IFSOCK || type === S_IFREG) return this.create(p, type | (mode & 0o7777), uid, gid);
    if (type === S_IFCHR || type === S_IFBLK) throw fsError('EPERM', `device nodes are not supported on a DynamicFS pool: '${p}'`);
    throw fsError('EINVAL', `mknod with file type 0${type.toString(8)}: '${p}'`);
  }

  symlink(target: string, p: string, uid: number, gid: number): number {
    return this.create(p, S_IFLNK | 0o777, uid, gid, { target, size: Buffer.byteLength(target) });
  }

  readlink(p: string): string {
    const row = this.stat(p);
    if (!isLink(row.mode) || row.target === null) throw fsError('EINVAL', `'${p}' is not a symbolic link`);
    return row.target;
  }

  /** Drops one link of `ino`; frees it if that was the last and nobody has it open. Call inside tx. */
  private dropLink(ino: number, now: number): void {
    const row = this.inode(ino);
    const nlink = row.nlink - 1;
    if (nlink <= 0 && !this.isOpen(ino)) this.store.freeInode(ino);
    else this.store.setNlink(ino, Math.max(0, nlink), now);
  }

  unlink(p: string): void {
    const { parentPath, name } = parentAndName(p);
    const parent = this.dirIno(parentPath);
    const ino = this.resolve(p);
    if (isDir(this.inode(ino).mode)) throw fsError('EISDIR', `'${p}' is a directory`);
    this.store.tx(() => {
      const now = Date.now();
      this.store.deleteDirent(parent, name);
      this.dropLink(ino, now);
      this.store.touchDir(parent, now);
    });
    this.invalidate();
  }

  rmdir(p: string): void {
    const { parentPath, name } = parentAndName(p);
    const parent = this.dirIno(parentPath);
    const ino = this.dirIno(p);
    if (this.store.childCount(ino) > 0) throw fsError('ENOTEMPTY', `directory '${p}' is not empty`);
    this.store.tx(() => {
      const now = Date.now();
      this.store.deleteDirent(parent, name);
      this.store.freeInode(ino);
      this.store.setNlink(parent, this.inode(parent).nlink - 1, now);
      this.store.touchDir(parent, now);
    });
    this.invalidate();
  }

  rename(src: string, dst: string): void {
    const s = parentAndName(src);
    const d = parentAndName(dst);
    const srcParent = this.dirIno(s.parentPath);
    const dstParent = this.dirIno(d.parentPath);
    const ino = this.resolve(src);
    const srcRow = this.inode(ino);
    const srcIsDir = isDir(srcRow.mode);
    const existing = this.store.lookup(dstParent, d.name);
    if (existing === ino) return;
    if (srcIsDir) {
      // A directory cannot move below itself.
      for (let cur = dstParent; cur !== ROOT_INO;) {
        if (cur === ino) throw fsError('EINVAL', `cannot move '${src}' into its own subtree '${dst}'`);
        const up = this.store.parentsOf(cur)[0];
        if (!up) break;
        cur = up.parent;
      }
    }
    let existingIsDir = false;
    if (existing !== undefined) {
      existingIsDir = isDir(this.inode(existing).mode);
      if (existingIsDir && !srcIsDir) throw fsError('EISDIR', `'${dst}' is a directory`);
      if (!existingIsDir && srcIsDir) throw fsError('ENOTDIR', `'${dst}' is not a directory`);
      if (existingIsDir && this.store.childCount(existing) > 0) throw fsError('ENOTEMPTY', `directory '${dst}' is not empty`);
    }
    this.store.tx(() => {
      const now = Date.now();
      if (existing !== undefined) {
        this.store.deleteDirent(dstParent, d.name);
        if (existingIsDir) {
          this.store.freeInode(existing);
          this.store.setNlink(dstParent, this.inode(dstParent).nlink - 1, now);
        } else {
          this.dropLink(existing, now);
        }
      }
      this.store.deleteDirent(srcParent, s.name);
      this.store.insertDirent(dstParent, d.name, ino);
      if (srcIsDir && srcParent !== dstParent) {
        this.store.setNlink(srcParent, this.inode(srcParent).nlink - 1, now);
        this.store.setNlink(dstParent, this.inode(dstParent).nlink + 1, now);
      }
      this.store.setTimes(ino, srcRow.atime, srcRow.mtime, now);
      this.store.touchDir(srcParent, now);
      this.store.touchDir(dstParent, now);
    });
    this.invalidate();
  }

  link(src: string, dst: string): void {
    const ino = this.resolve(src);
    if (isDir(this.inode(ino).mode)) throw fsError('EPERM', `'${src}' is a directory; directories cannot be hard-linked`);
    const { parentPath, name } = parentAndName(dst);
    const parent = this.dirIno(parentPath);
    this.store.tx(() => {
      if (this.store.lookup(parent, name) !== undefined) throw fsError('EEXIST', `'${dst}' already exists`);
      const now = Date.now();
      this.store.insertDirent(parent, name, ino);
      this.store.setNlink(ino, this.inode(ino).nlink + 1, now);
      this.store.touchDir(parent, now);
    });
  }

  chmod(p: string, mode: number): void {
    const row = this.stat(p);
    this.store.setMode(row.ino, (row.mode & ~0o7777) | (mode & 0o7777), Date.now());
  }

  chown(p: string, uid: number, gid: number): void {
    const row = this.stat(p);
    // -1 (as unsigned 32-bit) leaves that id unchanged.
    const keep = (v: number, cur: number) => (v === -1 || v === 0xffffffff ? cur : v);
    this.store.setOwner(row.ino, keep(uid, row.uid), keep(gid, row.gid), Date.now());
  }

  utimens(ino: number, atime: number, mtime: number): void {
    this.store.setTimes(ino, atime, mtime, Date.now());
  }

  setxattr(p: string, name: string, value: Buffer, flags: number): void {
    refuseAcl(name);
    const ino = this.resolve(p);
    const exists = this.store.getXattr(ino, name) !== undefined;
    if (flags & XATTR_CREATE && exists) throw fsError('EEXIST', `xattr ${name} already exists on '${p}'`);
    if (flags & XATTR_REPLACE && !exists) throw fsError('ENODATA', `xattr ${name} does not exist on '${p}'`);
    if (name === POLICY_XATTR) {
      const text = value.toString('utf8').replace(/\0+$/, '').trim();
      this.setPolicy(p, text);
      return;
    }
    this.store.setXattr(ino, name, value);
    if (name === CAPABILITY_XATTR) this.capabilitiesSet = true;
  }

  /** Sets the redundancy policy of a top-level directory (null: back to the pool default). */
  setPolicy(p: string, text: string | null): void {
    const parts = splitPath(p);
    const ino = this.resolve(p);
    if (parts.length !== 1 || !isDir(this.inode(ino).mode)) {
      throw fsError('EINVAL', `a redundancy policy can only be set on a top-level directory, not '${p}'`);
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

  /**
   * The kernel asks for security.capability before every write(2) to a FUSE file. Until some file
   * has one, answer without a path walk or a query.
   */
  private capabilitiesSet: boolean | null = null;

  getxattr(p: string, name: string): Buffer {
    refuseAcl(name);
    if (name === CAPABILITY_XATTR) {
      this.capabilitiesSet ??= this.store.anyXattrNamed(CAPABILITY_XATTR);
      if (!this.capabilitiesSet) throw fsError('ENODATA', `no xattr ${name} on '${p}'`);
    }
    const v = this.store.getXattr(this.resolve(p), name);
    if (v === undefined) throw fsError('ENODATA', `no xattr ${name} on '${p}'`);
    return v;
  }

  listxattr(p: string): string[] {
    // An ACL stored as a plain xattr by an older version is left in place, unlisted.
    return this.store.listXattrs(this.resolve(p)).filter((n) => !n.startsWith(ACL_PREFIX));
  }

  removexattr(p: string, name: string): void {
    refuseAcl(name);
    if (name === POLICY_XATTR) {
      this.resolve(p);
      this.setPolicy(p, null);
      return;
    }
    if (!this.store.removeXattr(this.resolve(p), name)) throw fsError('ENODATA', `no xattr ${name} on '${p}'`);
  }

  /** Paths that lead to `ino` (for reports naming files). */
  pathsOf(ino: number): string[] {
    const out: string[] = [];
    for (const ent of this.store.parentsOf(ino)) {
      if (ent.parent === ROOT_INO) out.push('/' + ent.name);
      else for (const up of this.pathsOf(ent.parent)) out.push(`${up}/${ent.name}`);
    }
    return out;
  }
}
