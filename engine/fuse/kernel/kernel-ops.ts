import type { Attr, AttrChange, FileSystem, Made, Owner } from '../../fs/filesystem.js';
import type { DirEntry } from '../../fs/namespace.js';
import { encodeName } from '../../util/byte-names.js';
import { fsError, toErrno, ERRNO } from '../../util/errors.js';
import type { OpObserver } from '../operations.js';
import {
  attrOut,
  cstring,
  dirent,
  entryOut,
  FATTR,
  initOut,
  INIT_WANTED,
  OP,
  openOut,
  parseInit,
  statfsOut,
  u32Out,
  type Request,
} from './protocol.js';
import type { Dispatch, KernelSession } from './session.js';

/** Seconds the kernel may keep a name it looked up (libfuse's default); attributes are never cached. */
const ENTRY_VALID = 1;
const ATTR_VALID = 0;
const FUSE_GETATTR_FH = 1;
const NUL = Buffer.of(0);

const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
const S_IFMT = 0o170000;

const OP_NAMES = new Map<number, string>(Object.entries(OP).map(([name, code]) => [code, name.toLowerCase()]));

export interface KernelOpsOptions {
  maxPages: number;
  maxBackground: number;
  /** Called once the kernel has taken the INIT answer (the mount's read-ahead can be set then). */
  onInit: () => void;
}

/**
 * Answers the kernel's requests with a FileSystem's inode operations: the kernel's node id is the
 * engine's inode number (the root is 1 in both), so nothing maps ids to paths and a file keeps its
 * identity through renames and unlinks. Every entry handed to the kernel counts a reference in the
 * FileSystem; FORGET gives them back. New entries belong to the caller the kernel names in each
 * request; the kernel checks permissions itself (default_permissions).
 */
export function kernelOperations(fs: FileSystem, observe: OpObserver, opts: KernelOpsOptions): (session: KernelSession) => Dispatch {
  /** Open directories: the listing, and whether it was taken for the read at offset 0 still to come. */
  const dirs = new Map<number, { ino: number; list: DirEntry[]; fresh: boolean }>();
  let nextDir = 1;
  const readBuffers: Buffer[] = [];

  return (session) => {
    const ok = (req: Request, ...body: Buffer[]): void => session.reply(req.unique, 0, ...body);
    /** An entry handed to the kernel: it now holds one more reference to the inode. */
    const entry = (a: Attr): Buffer => {
      fs.remember(a.ino);
      return entryOut(a.ino, a, ENTRY_VALID, ATTR_VALID);
    };
    const owner = (req: Request): Owner => ({ uid: req.uid, gid: req.gid });

    /** Runs one operation: its errors become the reply's errno, and every outcome is observed. */
    const run = (req: Request, fn: () => void | Promise<void>): void | Promise<void> => {
      const op = OP_NAMES.get(req.opcode) ?? `op${req.opcode}`;
      const start = performance.now();
      const fail = (err: unknown): void => {
        const errno = toErrno(err);
        try {
          observe(op, performance.now() - start, errno, err);
        } finally {
          // The caller waits in the kernel for this answer: it goes out even if logging the failure throws.
          session.reply(req.unique, errno);
        }
      };
      let result: void | Promise<void>;
      try {
        result = fn();
      } catch (err) {
        return fail(err);
      }
      if (!result) return observe(op, performance.now() - start, 0);
      return result.then(() => observe(op, performance.now() - start, 0), fail);
    };

    const takeReadBuffer = (size: number): Buffer => {
      const b = readBuffers.pop();
      return b && b.length >= size ? b : Buffer.allocUnsafeSlow(Math.max(size, opts.maxPages * 4096));
    };

    function setattr(req: Request): Promise<void> {
      const b = req.body;
      const valid = b.readUInt32LE(0);
      const change: AttrChange = {};
      if (valid & FATTR.MODE) change.mode = b.readUInt32LE(68);
      if (valid & FATTR.UID) change.uid = b.readUInt32LE(76);
      if (valid & FATTR.GID) change.gid = b.readUInt32LE(80);
      // Each time is set only when asked (utimensat's UTIME_OMIT leaves the other as it is).
      const now = Date.now();
      // Whole milliseconds, and the nanoseconds below: kept exact (a double of milliseconds is not).
      const time = (isNow: number, secAt: number, nsecAt: number): [number, number] => {
        if (valid & isNow) return [now, 0];
        const nsec = b.readUInt32LE(nsecAt);
        return [Number(b.readBigInt64LE(secAt)) * 1000 + Math.floor(nsec / 1e6), nsec % 1e6];
      };
      if (valid & FATTR.ATIME) [change.atime, change.atimeNs] = time(FATTR.ATIME_NOW, 32, 56);
      if (valid & FATTR.MTIME) [change.mtime, change.mtimeNs] = time(FATTR.MTIME_NOW, 40, 60);
      if (valid & FATTR.SIZE) change.size = Number(b.readBigUInt64LE(16));
      const fh = valid & FATTR.FH ? Number(b.readBigUInt64LE(8)) : undefined;
      return fs.setattrIno(req.nodeid, change, fh).then((a) => ok(req, attrOut(a, ATTR_VALID)));
    }

    function rename(req: Request, newParent: number, flags: number, names: Buffer): void {
      const [from, at] = cstring(names);
      const [to] = cstring(names, at);
      if (flags & RENAME_EXCHANGE) throw fsError('EINVAL', 'rename with RENAME_EXCHANGE is not supported');
      if (flags & ~RENAME_NOREPLACE) throw fsError('EINVAL', `rename flags ${flags} are not supported`);
      fs.renameAt(req.nodeid, from, newParent, to, (flags & RENAME_NOREPLACE) !== 0);
      ok(req);
    }

    function xattrReply(req: Request, size: number, value: Buffer): void {
      if (size === 0) return ok(req, u32Out(value.length));
      if (value.length > size) throw fsError('ERANGE', `the value needs ${value.length} bytes, the buffer has ${size}`);
      ok(req, value);
    }

    /** CREATE and TMPFILE: fuse_create_in (flags, mode, umask, open_flags), then the name. */
    function createOrTmpfile(req: Request, tmp: boolean): void {
      const b = req.body;
      const flags = b.readUInt32LE(0);
      const mode = b.readUInt32LE(4);
      let made: Made;
      if (tmp) {
        made = fs.tmpfileAt(req.nodeid, mode, flags, owner(req));
        // The kernel counts the link d_tmpfile() drops: it is given nlink 1 and makes it 0 itself.
        made.attr.nlink = 1;
      } else made = fs.createAt(req.nodeid, cstring(b, 16)[0], mode, flags, owner(req));
      ok(req, entry(made.attr), openOut(made.fh as number));
    }

    return (req) => {
      const b = req.body;
      switch (req.opcode) {
        case OP.INIT: {
          const init = parseInit(b);
          ok(
            req,
            initOut(init, {
              flags: INIT_WANTED,
              maxWrite: opts.maxPages * 4096,
              maxPages: opts.maxPages,
              maxBackground: opts.maxBackground,
            }),
          );
          opts.onInit();
          return;
        }
        case OP.FORGET:
          fs.forget(req.nodeid, Number(b.readBigUInt64LE(0)));
          return;
        case OP.BATCH_FORGET: {
          const count = b.readUInt32LE(0);
          for (let i = 0; i < count; i++) fs.forget(Number(b.readBigUInt64LE(8 + i * 16)), Number(b.readBigUInt64LE(16 + i * 16)));
          return;
        }
        case OP.INTERRUPT:
          return;
        case OP.LOOKUP:
          return run(req, () => ok(req, entry(fs.lookup(req.nodeid, cstring(b)[0]))));
        case OP.GETATTR:
          return run(req, () => {
            const fh = Number(b.readBigUInt64LE(8));
            const byHandle = (b.readUInt32LE(0) & FUSE_GETATTR_FH) !== 0;
            ok(req, attrOut(byHandle ? fs.fgetattr(fh) : fs.getattrIno(req.nodeid), ATTR_VALID));
          });
        case OP.SETATTR:
          return run(req, () => setattr(req));
        case OP.READLINK:
          return run(req, () => ok(req, encodeName(fs.readlinkIno(req.nodeid))));
        case OP.SYMLINK:
          return run(req, () => {
            const [name, at] = cstring(b);
            ok(req, entry(fs.symlinkAt(req.nodeid, name, cstring(b, at)[0], owner(req))));
          });
        case OP.MKNOD:
          // fuse_mknod_in: mode, rdev, umask, padding; then the name.
          return run(req, () =>
            ok(req, entry(fs.mknodAt(req.nodeid, cstring(b, 16)[0], b.readUInt32LE(0), b.readUInt32LE(4), owner(req)))),
          );
        case OP.MKDIR:
          return run(req, () => ok(req, entry(fs.mkdirAt(req.nodeid, cstring(b, 8)[0], b.readUInt32LE(0), owner(req)))));
        case OP.UNLINK:
          return run(req, () => {
            fs.unlinkAt(req.nodeid, cstring(b)[0]);
            ok(req);
          });
        case OP.RMDIR:
          return run(req, () => {
            fs.rmdirAt(req.nodeid, cstring(b)[0]);
            ok(req);
          });
        case OP.RENAME:
          return run(req, () => rename(req, Number(b.readBigUInt64LE(0)), 0, b.subarray(8)));
        case OP.RENAME2:
          return run(req, () => rename(req, Number(b.readBigUInt64LE(0)), b.readUInt32LE(8), b.subarray(16)));
        case OP.LINK:
          return run(req, () => ok(req, entry(fs.linkAt(Number(b.readBigUInt64LE(0)), req.nodeid, cstring(b, 8)[0]))));
        case OP.OPEN:
          return run(req, () => ok(req, openOut(fs.openIno(req.nodeid, b.readUInt32LE(0)))));
        case OP.CREATE:
          return run(req, () => createOrTmpfile(req, false));
        case OP.TMPFILE:
          return run(req, () => createOrTmpfile(req, true));
        case OP.READ:
          return run(req, () => {
            const fh = Number(b.readBigUInt64LE(0));
            const pos = Number(b.readBigUInt64LE(8));
            const size = b.readUInt32LE(16);
            const dest = takeReadBuffer(size);
            const send = (n: number): void => {
              ok(req, dest.subarray(0, n));
              readBuffers.push(dest);
            };
            const n = fs.read(fh, dest.subarray(0, size), size, pos);
            if (typeof n === 'number') return send(n);
            return n.then(send, (err: unknown) => {
              readBuffers.push(dest);
              throw err;
            });
          });
        case OP.WRITE:
          return run(req, () => {
            const fh = Number(b.readBigUInt64LE(0));
            const pos = Number(b.readBigUInt64LE(8));
            const size = b.readUInt32LE(16);
            const n = fs.write(fh, b.subarray(40, 40 + size), size, pos);
            if (typeof n === 'number') return ok(req, u32Out(n));
            return n.then((written) => ok(req, u32Out(written)));
          });
        case OP.STATFS:
          return run(req, () => ok(req, statfsOut(fs.statfsIno(req.nodeid))));
        case OP.FLUSH:
          return run(req, () => fs.flush(Number(b.readBigUInt64LE(0))).then(() => ok(req)));
        case OP.RELEASE:
          return run(req, () => fs.release(Number(b.readBigUInt64LE(0))).then(() => ok(req)));
        case OP.FSYNC:
          return run(req, () => fs.fsync(Number(b.readBigUInt64LE(0))).then(() => ok(req)));
        case OP.FSYNCDIR:
          return run(req, () => {
            fs.fsyncdir();
            ok(req);
          });
        case OP.SETXATTR:
          return run(req, () => {
            const size = b.readUInt32LE(0);
            const [name, at] = cstring(b, 8);
            fs.setxattrIno(req.nodeid, name, Buffer.from(b.subarray(at, at + size)), b.readUInt32LE(4), owner(req));
            ok(req);
          });
        case OP.GETXATTR:
          return run(req, () => xattrReply(req, b.readUInt32LE(0), fs.getxattrIno(req.nodeid, cstring(b, 8)[0])));
        case OP.LISTXATTR:
          return run(req, () => {
            const names = fs.listxattrIno(req.nodeid);
            xattrReply(req, b.readUInt32LE(0), Buffer.concat(names.flatMap((n) => [encodeName(n), NUL])));
          });
        case OP.REMOVEXATTR:
          return run(req, () => {
            fs.removexattrIno(req.nodeid, cstring(b)[0], owner(req));
            ok(req);
          });
        case OP.OPENDIR:
          return run(req, () => {
            // A listing taken at open: offsets into it stay valid while entries come and go.
            const list = fs.entries(req.nodeid);
            const fh = nextDir++;
            dirs.set(fh, { ino: req.nodeid, list, fresh: true });
            ok(req, openOut(fh));
          });
        case OP.READDIR:
          return run(req, () => {
            const open = dirs.get(Number(b.readBigUInt64LE(0)));
            const from = Number(b.readBigUInt64LE(8));
            // Offset 0 again (rewinddir, or a second pass through one handle): the directory as it is now.
            if (open && from === 0 && !open.fresh) open.list = fs.entries(open.ino);
            if (open) open.fresh = false;
            const list = open?.list ?? [];
            const size = b.readUInt32LE(16);
            const out: Buffer[] = [];
            let used = 0;
            for (let i = from; i < list.length; i++) {
              const e = list[i];
              // d_type is the file type's bits of the mode, shifted (DT_DIR 4, DT_REG 8, DT_CHR 2, ...).
              const d = dirent(e.ino, i + 1, (e.mode & S_IFMT) >>> 12, encodeName(e.name));
              if (used + d.length > size) break;
              out.push(d);
              used += d.length;
            }
            ok(req, Buffer.concat(out, used));
          });
        case OP.RELEASEDIR:
          dirs.delete(Number(b.readBigUInt64LE(0)));
          return ok(req);
        case OP.ACCESS:
        case OP.DESTROY:
          return ok(req);
        default:
          session.reply(req.unique, -ERRNO.ENOSYS);
      }
    };
  };
}
