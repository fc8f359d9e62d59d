/** Handlers that do nothing but answer, for the bench's ceiling mounts (see null-fuse.ts). */
import type { Operations } from 'fuse-native';

const FILE_SIZE = 1 << 30;
const ENODATA = -61;
const now = Date.now();
const dir = { mode: 0o040755, uid: 0, gid: 0, size: 4096, nlink: 2, ino: 1, atime: now, mtime: now, ctime: now };
const file = { mode: 0o100644, uid: 0, gid: 0, size: FILE_SIZE, nlink: 1, ino: 2, atime: now, mtime: now, ctime: now };
const getattr: Operations['getattr'] = (p, cb) => (p === '/' ? cb(0, dir) : p === '/file' ? cb(0, file) : cb(-2));

const minimal: Operations = {
  getattr,
  readdir: (_p, cb) => cb(0, ['.', '..', 'file']),
  open: (_p, _f, cb) => cb(0, 1),
  create: (_p, _m, cb) => cb(0, 1),
  read: (_p, _fd, _buf, len, pos, cb) => cb(Math.max(0, Math.min(len, FILE_SIZE - pos))),
  write: (_p, _fd, _buf, len, _pos, cb) => cb(len),
  truncate: (_p, _s, cb) => cb(0),
  ftruncate: (_p, _fd, _s, cb) => cb(0),
  flush: (_p, _fd, cb) => cb(0),
  fsync: (_p, _d, _fd, cb) => cb(0),
  release: (_p, _fd, cb) => cb(0),
  utimens: (_p, _a, _m, cb) => cb(0),
  chmod: (_p, _m, cb) => cb(0),
};

/** The rest of the operations engine/fuse/operations.ts implements, each answering at once. */
const rest: Operations = {
  init: (cb) => cb(0),
  fgetattr: (p, _fd, cb) => getattr(p, cb),
  statfs: (_p, cb) =>
    cb(0, {
      bsize: 4096,
      frsize: 4096,
      blocks: 1 << 20,
      bfree: 1 << 20,
      bavail: 1 << 20,
      files: 1 << 20,
      ffree: 1 << 20,
      favail: 1 << 20,
      fsid: 0,
      flag: 0,
      namemax: 255,
    }),
  fsyncdir: (_p, _d, _fd, cb) => cb(0),
  unlink: (_p, cb) => cb(0),
  rename: (_s, _d, cb) => cb(0),
  link: (_s, _d, cb) => cb(0),
  symlink: (_s, _d, cb) => cb(0),
  mknod: (_p, _m, _d, cb) => cb(0),
  readlink: (_p, cb) => cb(0, 'file'),
  mkdir: (_p, _m, cb) => cb(0),
  rmdir: (_p, cb) => cb(0),
  chown: (_p, _u, _g, cb) => cb(0),
  setxattr: (_p, _n, _v, _pos, _f, cb) => cb(0),
  getxattr: (_p, _n, _pos, cb) => cb(ENODATA),
  listxattr: (_p, cb) => cb(0, []),
  removexattr: (_p, _n, cb) => cb(0),
};

/** `full`: every operation DynamicFS implements; otherwise only what dd needs. */
export function nullOperations(full: boolean): Operations {
  return full ? { ...minimal, ...rest } : minimal;
}
