/**
 * A FUSE mount whose handlers do nothing but answer: the ceiling of the fuse-native binding with
 * the same mount options DynamicFS uses. Reads return the buffer as it is; writes are discarded.
 * Usage: node dist/bench/null-fuse.js MOUNTPOINT [READ_AHEAD_KB] (runs until SIGTERM); READ_AHEAD_KB 0
 * (the default) keeps the kernel's read-ahead, anything else sets it as DynamicFS does.
 */
import { FuseMount } from '../engine/fuse/mount.js';

const mnt = process.argv[2];
const FILE_SIZE = 1 << 30;
const now = Date.now();
const dir = { mode: 0o040755, uid: 0, gid: 0, size: 4096, nlink: 2, ino: 1, atime: now, mtime: now, ctime: now };
const file = { mode: 0o100644, uid: 0, gid: 0, size: FILE_SIZE, nlink: 1, ino: 2, atime: now, mtime: now, ctime: now };

const mount = new FuseMount(mnt, {
  getattr: (p, cb) => (p === '/' ? cb(0, dir) : p === '/file' ? cb(0, file) : cb(-2)),
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
}, { fsname: 'nullfs', readAheadKb: Number(process.argv[3] ?? 0) });

await mount.mount();
process.stdout.write('ready\n');
const stop = () => void mount.unmount().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
