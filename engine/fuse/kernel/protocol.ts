/**
 * The FUSE kernel protocol (include/uapi/linux/fuse.h), the parts DynamicFS speaks: request
 * header, opcodes, flags and the reply structures. Little-endian, as on every Linux FUSE host.
 */
import { decodeName } from '../../util/byte-names.js';

export const OP = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  DESTROY: 38,
  BATCH_FORGET: 42,
  RENAME2: 45,
  /** open(O_TMPFILE) (protocol 7.37): a CREATE without a name. */
  TMPFILE: 51,
} as const;

export const IN_HEADER = 40;
export const OUT_HEADER = 16;

/** fuse_init_out.flags we may ask for. */
export const INIT = {
  ASYNC_READ: 1 << 0,
  ATOMIC_O_TRUNC: 1 << 3,
  BIG_WRITES: 1 << 5,
  MAX_PAGES: 1 << 22,
  HANDLE_KILLPRIV_V2: 1 << 28,
} as const;

/** What DynamicFS asks for: reads in parallel, writes and reads of up to max_pages. */
export const INIT_WANTED = INIT.ASYNC_READ | INIT.BIG_WRITES | INIT.MAX_PAGES;

/** fuse_setattr_in.valid */
export const FATTR = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
} as const;

/** The highest minor version whose structures this file knows (7.31: max_pages, killpriv_v2). */
export const MINOR = 31;

export interface Request {
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
  /** The bytes after the header (a view of the read buffer: valid until the next read into it). */
  body: Buffer;
}

export function parseRequest(buf: Buffer, n: number): Request {
  return {
    opcode: buf.readUInt32LE(4),
    unique: buf.readBigUInt64LE(8),
    nodeid: Number(buf.readBigUInt64LE(16)),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
    body: buf.subarray(IN_HEADER, n),
  };
}

/**
 * A NUL-terminated name at `at` of `b` (as the engine's name string: its bytes kept exactly, see
 * util/byte-names.ts), and where the next field starts.
 */
export function cstring(b: Buffer, at = 0): [string, number] {
  const end = b.indexOf(0, at);
  const stop = end < 0 ? b.length : end;
  return [decodeName(b, at, stop), stop + 1];
}

export interface Attributes {
  ino: number;
  size: number;
  blocks: number;
  atime: number;
  mtime: number;
  ctime: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
  /** Nanoseconds below the millisecond of atime and mtime. */
  atimeNs?: number;
  mtimeNs?: number;
}

function putTime(b: Buffer, secAt: number, nsecAt: number, ms: number, subNs = 0): void {
  const sec = Math.floor(ms / 1000);
  b.writeBigInt64LE(BigInt(sec), secAt);
  b.writeUInt32LE(Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6) + subNs), nsecAt);
}

/** struct fuse_attr (88 bytes) at `at`. Times are milliseconds since the epoch. */
export function putAttr(b: Buffer, at: number, a: Attributes): void {
  b.writeBigUInt64LE(BigInt(a.ino), at);
  b.writeBigUInt64LE(BigInt(a.size), at + 8);
  b.writeBigUInt64LE(BigInt(a.blocks), at + 16);
  putTime(b, at + 24, at + 48, a.atime, a.atimeNs);
  putTime(b, at + 32, at + 52, a.mtime, a.mtimeNs);
  putTime(b, at + 40, at + 56, a.ctime);
  b.writeUInt32LE(a.mode, at + 60);
  b.writeUInt32LE(a.nlink, at + 64);
  b.writeUInt32LE(a.uid, at + 68);
  b.writeUInt32LE(a.gid, at + 72);
  b.writeUInt32LE(a.rdev >>> 0, at + 76);
  b.writeUInt32LE(a.blksize, at + 80);
  b.writeUInt32LE(0, at + 84);
}

/** struct fuse_entry_out (128 bytes); validity in seconds (0: the kernel asks again every time). */
export function entryOut(nodeid: number, a: Attributes, entryValid: number, attrValid: number): Buffer {
  const b = Buffer.alloc(128);
  b.writeBigUInt64LE(BigInt(nodeid), 0);
  b.writeBigUInt64LE(0n, 8); // generation
  b.writeBigUInt64LE(BigInt(entryValid), 16);
  b.writeBigUInt64LE(BigInt(attrValid), 24);
  putAttr(b, 40, a);
  return b;
}

/** struct fuse_attr_out (104 bytes). */
export function attrOut(a: Attributes, attrValid: number): Buffer {
  const b = Buffer.alloc(104);
  b.writeBigUInt64LE(BigInt(attrValid), 0);
  putAttr(b, 16, a);
  return b;
}

/** FOPEN_* flags of fuse_open_out. */
export const FOPEN_KEEP_CACHE = 1 << 1;

/** struct fuse_open_out (16 bytes). */
export function openOut(fh: number, flags = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt(fh), 0);
  b.writeUInt32LE(flags, 8);
  return b;
}

export function u32Out(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(v, 0);
  return b;
}

export interface StatFs {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namemax: number;
  frsize: number;
}

/** struct fuse_statfs_out (80 bytes). */
export function statfsOut(s: StatFs): Buffer {
  const b = Buffer.alloc(80);
  b.writeBigUInt64LE(BigInt(Math.floor(s.blocks)), 0);
  b.writeBigUInt64LE(BigInt(Math.floor(s.bfree)), 8);
  b.writeBigUInt64LE(BigInt(Math.floor(s.bavail)), 16);
  b.writeBigUInt64LE(BigInt(Math.floor(s.files)), 24);
  b.writeBigUInt64LE(BigInt(Math.floor(s.ffree)), 32);
  b.writeUInt32LE(s.bsize, 40);
  b.writeUInt32LE(s.namemax, 44);
  b.writeUInt32LE(s.frsize, 48);
  return b;
}

/** One struct fuse_dirent (8-byte aligned) for READDIR; `off` is where the next read resumes. */
export function dirent(ino: number, off: number, type: number, name: Buffer): Buffer {
  const size = (24 + name.length + 7) & ~7;
  const b = Buffer.alloc(size);
  b.writeBigUInt64LE(BigInt(ino), 0);
  b.writeBigUInt64LE(BigInt(off), 8);
  b.writeUInt32LE(name.length, 16);
  b.writeUInt32LE(type, 20);
  name.copy(b, 24);
  return b;
}

export interface InitIn {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
}

export function parseInit(body: Buffer): InitIn {
  return { major: body.readUInt32LE(0), minor: body.readUInt32LE(4), maxReadahead: body.readUInt32LE(8), flags: body.readUInt32LE(12) };
}

/** struct fuse_init_out (64 bytes). */
export function initOut(init: InitIn, o: { flags: number; maxWrite: number; maxPages: number; maxBackground: number }): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(7, 0);
  b.writeUInt32LE(Math.min(init.minor, MINOR), 4);
  b.writeUInt32LE(init.maxReadahead, 8);
  b.writeUInt32LE(init.flags & o.flags, 12);
  b.writeUInt16LE(o.maxBackground, 16);
  b.writeUInt16LE(Math.ceil((o.maxBackground * 3) / 4), 18);
  b.writeUInt32LE(o.maxWrite, 20);
  b.writeUInt32LE(1, 24); // time granularity: nanoseconds
  b.writeUInt16LE(o.maxPages, 28);
  return b;
}
