/**
 * A do-nothing FUSE server that speaks the kernel's protocol on /dev/fuse itself, with no binding
 * and no libfuse: the bench's measure of what fuse-native costs. It answers like null-fuse.ts (one
 * 1 GiB file, writes discarded, reads return zeros, getxattr answers ENODATA) but negotiates
 * FUSE_MAX_PAGES, so the kernel sends up to 1 MiB per read and write request instead of the
 * 128 KiB that libfuse 2 (and so fuse-native) is held to.
 *
 * Mounting takes root: mount(8) is handed the open /dev/fuse as its fd 3 (`-o fd=3`), the way
 * fusermount does it for libfuse. `-i` keeps mount(8) from running a mount.fuse helper.
 *
 * Usage: node dist/bench/kernel-null.js MOUNTPOINT [READ_AHEAD_KB] [MAX_PAGES] (runs until SIGTERM).
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const mnt = path.resolve(process.argv[2]);
const readAheadKb = Number(process.argv[3] ?? 1024);
const maxPages = Number(process.argv[4] ?? 256);
const FILE_SIZE = 2 ** 30;
const PAGE = 4096;
const IN_HEADER = 40;
/** Requests read at once; each holds a libuv pool thread while it waits (the pool has 4). */
const READERS = 3;

const OP = {
  LOOKUP: 1, FORGET: 2, GETATTR: 3, SETATTR: 4, OPEN: 14, READ: 15, WRITE: 16, STATFS: 17, RELEASE: 18,
  FSYNC: 20, GETXATTR: 22, FLUSH: 25, INIT: 26, OPENDIR: 27, READDIR: 28, RELEASEDIR: 29, CREATE: 35,
  INTERRUPT: 36, BATCH_FORGET: 42,
} as const;
const FUSE_ASYNC_READ = 1 << 0;
const FUSE_BIG_WRITES = 1 << 5;
const FUSE_MAX_PAGES = 1 << 22;
const ENOENT = 2;
const ENODATA = 61;
const ENOSYS = 38;

const ROOT = 1;
const FILE = 2;
const now = BigInt(Math.floor(Date.now() / 1000));

/** struct fuse_attr (88 bytes) at `at`. */
function putAttr(b: Buffer, at: number, node: number): void {
  const dir = node === ROOT;
  b.writeBigUInt64LE(BigInt(node), at);
  b.writeBigUInt64LE(BigInt(dir ? PAGE : FILE_SIZE), at + 8);
  b.writeBigUInt64LE(BigInt(dir ? 8 : FILE_SIZE / 512), at + 16);
  for (const t of [24, 32, 40]) b.writeBigUInt64LE(now, at + t);
  b.writeUInt32LE(dir ? 0o040755 : 0o100644, at + 60);
  b.writeUInt32LE(dir ? 2 : 1, at + 64);
  b.writeUInt32LE(PAGE, at + 80);
}

/** struct fuse_entry_out: node id, generation, 1 s entry and attribute validity, attributes. */
function entryOut(node: number): Buffer {
  const b = Buffer.alloc(128);
  b.writeBigUInt64LE(BigInt(node), 0);
  b.writeBigUInt64LE(1n, 16);
  b.writeBigUInt64LE(1n, 24);
  putAttr(b, 40, node);
  return b;
}

function attrOut(node: number): Buffer {
  const b = Buffer.alloc(104);
  b.writeBigUInt64LE(1n, 0);
  putAttr(b, 16, node);
  return b;
}

function openOut(): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(1n, 0);
  return b;
}

/** struct fuse_init_out (64 bytes): protocol 7.31 at most, 1 MiB requests. */
function initOut(req: Buffer): Buffer {
  const minor = req.readUInt32LE(IN_HEADER + 4);
  const maxReadahead = req.readUInt32LE(IN_HEADER + 8);
  const offered = req.readUInt32LE(IN_HEADER + 12);
  const b = Buffer.alloc(64);
  b.writeUInt32LE(7, 0);
  b.writeUInt32LE(Math.min(minor, 31), 4);
  b.writeUInt32LE(maxReadahead, 8);
  b.writeUInt32LE(offered & (FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES), 12);
  b.writeUInt16LE(12, 16); // max_background, the kernel's default
  b.writeUInt16LE(9, 18); // congestion_threshold
  b.writeUInt32LE(maxPages * PAGE, 20); // max_write
  b.writeUInt32LE(1, 24); // time_gran
  b.writeUInt16LE(maxPages, 28);
  return b;
}

const zeros = Buffer.alloc(maxPages * PAGE);
/** The largest read and write requests seen, printed at exit: they show what the kernel agreed to. */
const largest = { read: 0, write: 0 };
const fd = fs.openSync('/dev/fuse', 'r+');

function reply(unique: bigint, errno: number, body?: Buffer): void {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + (body?.length ?? 0), 0);
  h.writeInt32LE(-errno, 4);
  h.writeBigUInt64LE(unique, 8);
  try {
    fs.writevSync(fd, body ? [h, body] : [h]);
  } catch {
    /* the request was interrupted, or the mount is gone */
  }
}

function answer(req: Buffer, n: number): void {
  const op = req.readUInt32LE(4);
  const unique = req.readBigUInt64LE(8);
  const node = Number(req.readBigUInt64LE(16));
  switch (op) {
    case OP.INIT:
      reply(unique, 0, initOut(req));
      // After the answer: the kernel sets the mount's read-ahead from it.
      return setReadAhead();
    case OP.LOOKUP:
      return node === ROOT && req.toString('utf8', IN_HEADER, n - 1) === 'file' ? reply(unique, 0, entryOut(FILE)) : reply(unique, ENOENT);
    case OP.FORGET:
    case OP.BATCH_FORGET:
    case OP.INTERRUPT:
      return;
    case OP.GETATTR:
    case OP.SETATTR:
      return reply(unique, 0, attrOut(node));
    case OP.OPEN:
    case OP.OPENDIR:
      return reply(unique, 0, openOut());
    case OP.CREATE:
      return reply(unique, 0, Buffer.concat([entryOut(FILE), openOut()]));
    case OP.READ: {
      largest.read = Math.max(largest.read, req.readUInt32LE(IN_HEADER + 16));
      const offset = Number(req.readBigUInt64LE(IN_HEADER + 8));
      const size = req.readUInt32LE(IN_HEADER + 16);
      return reply(unique, 0, zeros.subarray(0, Math.max(0, Math.min(size, FILE_SIZE - offset))));
    }
    case OP.WRITE: {
      largest.write = Math.max(largest.write, req.readUInt32LE(IN_HEADER + 16));
      const out = Buffer.alloc(8);
      out.writeUInt32LE(req.readUInt32LE(IN_HEADER + 16), 0);
      return reply(unique, 0, out);
    }
    case OP.READDIR:
      return reply(unique, 0, Buffer.alloc(0));
    case OP.STATFS: {
      const out = Buffer.alloc(80);
      for (const at of [0, 8, 16, 24, 32]) out.writeBigUInt64LE(1n << 20n, at);
      out.writeUInt32LE(PAGE, 40);
      out.writeUInt32LE(255, 44);
      out.writeUInt32LE(PAGE, 48);
      return reply(unique, 0, out);
    }
    case OP.GETXATTR:
      return reply(unique, ENODATA);
    case OP.RELEASE:
    case OP.RELEASEDIR:
    case OP.FLUSH:
    case OP.FSYNC:
      return reply(unique, 0);
    default:
      return reply(unique, ENOSYS);
  }
}

/**
 * The bdi of the mount is named by its device number in mountinfo (a stat of the mount from this
 * process would wait on this process's own answer).
 */
function setReadAhead(): void {
  const line = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === mnt);
  const dev = line?.split(' ')[2];
  if (readAheadKb <= 0 || !dev) return;
  try {
    fs.writeFileSync(`/sys/class/bdi/${dev}/read_ahead_kb`, `${readAheadKb}\n`);
  } catch {
    /* no sysfs: the kernel's read-ahead stays */
  }
}

let gone = false;
function reader(): void {
  const buf = Buffer.alloc(maxPages * PAGE + 2 * PAGE);
  const next = (): void => {
    fs.read(fd, buf, 0, buf.length, null, (err, n) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // ENOENT: a request interrupted before we read it. ENODEV: unmounted.
        if (code === 'ENOENT' || code === 'EINTR' || code === 'EAGAIN') return next();
        if (!gone) {
          gone = true;
          process.exit(code === 'ENODEV' ? 0 : 1);
        }
        return;
      }
      answer(buf, n);
      next();
    });
  };
  next();
}

const mounted = spawnSync('mount', ['-i', '-t', 'fuse.kernelnull', '-o', `fd=3,rootmode=40000,user_id=0,group_id=0,default_permissions,max_read=${maxPages * PAGE}`, 'kernelnull', mnt], {
  stdio: ['ignore', 'inherit', 'inherit', fd],
});
if (mounted.status !== 0) {
  process.stderr.write(`kernel-null: mount(8) failed (exit ${mounted.status}); it needs root\n`);
  process.exit(1);
}
for (let i = 0; i < READERS; i++) reader();

process.stdout.write('ready\n');
process.on('exit', () => process.stdout.write(`largest requests: read ${largest.read} write ${largest.write}\n`));
const stop = (): void => void execFile('umount', ['-l', mnt], () => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
