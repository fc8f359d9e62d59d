/**
 * A do-nothing FUSE server on /dev/fuse with no binding and no libfuse: DynamicFS's own session
 * (engine/fuse/kernel/) answering like null-fuse.ts (one 1 GiB file, writes discarded, reads return
 * zeros, getxattr answers ENODATA). Beside the fuse-native ceiling it shows what the binding and
 * libfuse 2's 128 KiB requests cost; the session asks for 1 MiB requests. Needs root.
 *
 * Usage: node dist/bench/kernel-null.js MOUNTPOINT [READ_AHEAD_KB] (runs until SIGTERM).
 */
import path from 'node:path';
import { MAX_BACKGROUND, setReadAhead } from '../engine/fuse/mount.js';
import {
  attrOut,
  entryOut,
  initOut,
  INIT_WANTED,
  OP,
  openOut,
  parseInit,
  statfsOut,
  u32Out,
  type Attributes,
  type Request,
} from '../engine/fuse/kernel/protocol.js';
import { KernelSession } from '../engine/fuse/kernel/session.js';

const mnt = path.resolve(process.argv[2]);
const readAheadKb = Number(process.argv[3] ?? 1024);
const MAX_PAGES = 256;
const FILE_SIZE = 2 ** 30;
const ROOT = 1;
const FILE = 2;
const ENOENT = 2;
const ENODATA = 61;
const ENOSYS = 38;

const now = Date.now();
const attr = (node: number): Attributes =>
  node === ROOT
    ? {
        ino: ROOT,
        size: 4096,
        blocks: 8,
        atime: now,
        mtime: now,
        ctime: now,
        mode: 0o040755,
        nlink: 2,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
      }
    : {
        ino: FILE,
        size: FILE_SIZE,
        blocks: FILE_SIZE / 512,
        atime: now,
        mtime: now,
        ctime: now,
        mode: 0o100644,
        nlink: 1,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
      };
const zeros = Buffer.alloc(MAX_PAGES * 4096);
/** The largest read and write requests seen, printed at exit: they show what the kernel agreed to. */
const largest = { read: 0, write: 0 };

function answer(req: Request): void {
  const b = req.body;
  const ok = (...body: Buffer[]): void => session.reply(req.unique, 0, ...body);
  const fail = (errno: number): void => session.reply(req.unique, -errno);
  switch (req.opcode) {
    case OP.INIT:
      ok(initOut(parseInit(b), { flags: INIT_WANTED, maxWrite: MAX_PAGES * 4096, maxPages: MAX_PAGES, maxBackground: MAX_BACKGROUND }));
      if (readAheadKb > 0) void setReadAhead(mnt, readAheadKb);
      return;
    case OP.LOOKUP:
      return req.nodeid === ROOT && b.toString('utf8', 0, b.length - 1) === 'file' ? ok(entryOut(FILE, attr(FILE), 1, 1)) : fail(ENOENT);
    case OP.FORGET:
    case OP.BATCH_FORGET:
    case OP.INTERRUPT:
      return;
    case OP.GETATTR:
    case OP.SETATTR:
      return ok(attrOut(attr(req.nodeid), 1));
    case OP.OPEN:
    case OP.OPENDIR:
      return ok(openOut(1));
    case OP.CREATE:
      return ok(entryOut(FILE, attr(FILE), 1, 1), openOut(1));
    case OP.READ: {
      const offset = Number(b.readBigUInt64LE(8));
      const size = b.readUInt32LE(16);
      largest.read = Math.max(largest.read, size);
      return ok(zeros.subarray(0, Math.max(0, Math.min(size, FILE_SIZE - offset))));
    }
    case OP.WRITE: {
      const size = b.readUInt32LE(16);
      largest.write = Math.max(largest.write, size);
      return ok(u32Out(size));
    }
    case OP.READDIR:
      return ok();
    case OP.STATFS:
      return ok(
        statfsOut({
          blocks: 1 << 20,
          bfree: 1 << 20,
          bavail: 1 << 20,
          files: 1 << 20,
          ffree: 1 << 20,
          bsize: 4096,
          namemax: 255,
          frsize: 4096,
        }),
      );
    case OP.GETXATTR:
      return fail(ENODATA);
    case OP.RELEASE:
    case OP.RELEASEDIR:
    case OP.FLUSH:
    case OP.FSYNC:
      return ok();
    default:
      return fail(ENOSYS);
  }
}

const session = new KernelSession(
  mnt,
  { fsname: 'kernelnull', subtype: 'kernelnull', allowOther: false, defaultPermissions: true, maxPages: MAX_PAGES, readers: 2 },
  answer,
);
await session.mount();
process.stdout.write('ready\n');
process.on('exit', () => process.stdout.write(`largest requests: read ${largest.read} write ${largest.write}\n`));
const stop = (): void => void session.unmount().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
