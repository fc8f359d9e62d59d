import type { Operations, Stat } from 'fuse-native';
import type { Attr, FileSystem } from '../fs/filesystem.js';
import { toErrno } from '../util/errors.js';

export interface OpObserver {
  (op: string, ms: number, errno: number, err?: unknown): void;
}

function toStat(a: Attr): Stat {
  return {
    mode: a.mode,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    nlink: a.nlink,
    ino: a.ino,
    atime: a.atime,
    mtime: a.mtime,
    ctime: a.ctime,
    rdev: a.rdev,
    blocks: a.blocks,
    blksize: a.blksize,
  };
}

/** fuse-native callbacks over a FileSystem: every thrown error becomes its errno, never a crash. */
export function fuseOperations(fs: FileSystem, observe: OpObserver = () => undefined): Operations {
  function run<T>(op: string, fn: () => T | Promise<T>, done: (errno: number, value?: T) => void): void {
    const start = performance.now();
    let result: T | Promise<T>;
    try {
      result = fn();
    } catch (err) {
      const errno = toErrno(err);
      observe(op, performance.now() - start, errno, err);
      done(errno);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (v) => {
          observe(op, performance.now() - start, 0);
          done(0, v);
        },
        (err: unknown) => {
          const errno = toErrno(err);
          observe(op, performance.now() - start, errno, err);
          done(errno);
        },
      );
    } else {
      observe(op, performance.now() - start, 0);
      done(0, result);
    }
  }

  return {
    init: (cb) => cb(0),
    getattr: (p, cb) =>
      run(
        'getattr',
        () => toStat(fs.getattr(p)),
        (e, v) => cb(e, v),
      ),
    fgetattr: (p, fd, cb) =>
      run(
        'fgetattr',
        () => toStat(fs.fgetattr(fd)),
        (e, v) => cb(e, v),
      ),
    statfs: (p, cb) =>
      run(
        'statfs',
        () => fs.statfs(p),
        (e, v) => cb(e, v),
      ),
    readdir: (p, cb) =>
      run(
        'readdir',
        () => fs.readdir(p),
        (e, v) => cb(e, v),
      ),
    open: (p, flags, cb) =>
      run(
        'open',
        () => fs.open(p, flags),
        (e, v) => cb(e, v),
      ),
    create: (p, mode, cb) =>
      run(
        'create',
        () => fs.create(p, mode),
        (e, v) => cb(e, v),
      ),
    read: (_p, fd, buf, len, pos, cb) =>
      run(
        'read',
        () => fs.read(fd, buf, len, pos),
        (e, v) => cb(e < 0 ? e : (v ?? 0)),
      ),
    write: (_p, fd, buf, len, pos, cb) =>
      run(
        'write',
        () => fs.write(fd, buf, len, pos),
        (e, v) => cb(e < 0 ? e : (v ?? 0)),
      ),
    flush: (_p, fd, cb) =>
      run(
        'flush',
        () => fs.flush(fd),
        (e) => cb(e),
      ),
    fsync: (_p, _ds, fd, cb) =>
      run(
        'fsync',
        () => fs.fsync(fd),
        (e) => cb(e),
      ),
    fsyncdir: (_p, _ds, _fd, cb) =>
      run(
        'fsyncdir',
        () => fs.fsyncdir(),
        (e) => cb(e),
      ),
    release: (_p, fd, cb) =>
      run(
        'release',
        () => fs.release(fd),
        (e) => cb(e),
      ),
    truncate: (p, size, cb) =>
      run(
        'truncate',
        () => fs.truncate(p, size),
        (e) => cb(e),
      ),
    ftruncate: (_p, fd, size, cb) =>
      run(
        'ftruncate',
        () => fs.ftruncate(fd, size),
        (e) => cb(e),
      ),
    unlink: (p, cb) =>
      run(
        'unlink',
        () => fs.unlink(p),
        (e) => cb(e),
      ),
    rename: (src, dst, cb) =>
      run(
        'rename',
        () => fs.rename(src, dst),
        (e) => cb(e),
      ),
    link: (src, dst, cb) =>
      run(
        'link',
        () => fs.link(src, dst),
        (e) => cb(e),
      ),
    mknod: (p, mode, dev, cb) =>
      run(
        'mknod',
        () => fs.mknod(p, mode, undefined, dev),
        (e) => cb(e),
      ),
    symlink: (target, p, cb) =>
      run(
        'symlink',
        () => fs.symlink(target, p),
        (e) => cb(e),
      ),
    readlink: (p, cb) =>
      run(
        'readlink',
        () => fs.readlink(p),
        (e, v) => cb(e, v),
      ),
    mkdir: (p, mode, cb) =>
      run(
        'mkdir',
        () => fs.mkdir(p, mode),
        (e) => cb(e),
      ),
    rmdir: (p, cb) =>
      run(
        'rmdir',
        () => fs.rmdir(p),
        (e) => cb(e),
      ),
    chmod: (p, mode, cb) =>
      run(
        'chmod',
        () => fs.chmod(p, mode),
        (e) => cb(e),
      ),
    chown: (p, uid, gid, cb) =>
      run(
        'chown',
        () => fs.chown(p, uid, gid),
        (e) => cb(e),
      ),
    utimens: (p, atime, mtime, cb) =>
      run(
        'utimens',
        () => fs.utimens(p, atime, mtime),
        (e) => cb(e),
      ),
    setxattr: (p, name, value, _pos, flags, cb) =>
      run(
        'setxattr',
        () => fs.setxattr(p, name, Buffer.from(value), flags),
        (e) => cb(e),
      ),
    getxattr: (p, name, _pos, cb) =>
      run(
        'getxattr',
        () => fs.getxattr(p, name),
        (e, v) => cb(e, v),
      ),
    listxattr: (p, cb) =>
      run(
        'listxattr',
        () => fs.listxattr(p),
        (e, v) => cb(e, v),
      ),
    removexattr: (p, name, cb) =>
      run(
        'removexattr',
        () => fs.removexattr(p, name),
        (e) => cb(e),
      ),
  };
}
