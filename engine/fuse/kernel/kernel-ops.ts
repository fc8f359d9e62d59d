import type { Attr, FileSystem, Owner } from '../../fs/filesystem.js';
import { fsError, toErrno, ERRNO } from '../../util/errors.js';
import type { OpObserver } from '../operations.js';
import { NodeTable } from './node-table.js';
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
const RENAME_NOREPLACE = 1;

const OP_NAMES = new Map<number, string>(Object.entries(OP).map(([name, code]) => [code, name.toLowerCase()]));

export interface KernelOpsOptions {
  maxPages: number;
  maxBackground: number;
  /** Called once the kernel has taken the INIT answer (the mount's read-ahead can be set then). */
  onInit: () => void;
}

/**
 * Answers the kernel's requests with a FileSystem: node ids to paths (NodeTable), request bodies
 * to arguments, results and errors to replies. New entries belong to the caller the kernel names
 * in each request; the kernel checks permissions itself (default_permissions).
 */
export function kernelOperations(fs: FileSystem, observe: OpObserver, opts: KernelOpsOptions): (session: KernelSession) => Dispatch {
  const nodes = new NodeTable();
  const dirs = new Map<number, string[]>();
  let nextDir = 1;
  const readBuffers: Buffer[] = [];

  return (session) => {
    const ok = (req: Request, ...body: Buffer[]): void => session.reply(req.unique, 0, ...body);

    const pathOf = (node: number): string => {
      const p = nodes.path(node);
      if (p === null) throw fsError('ENOENT', `node ${node} is gone`);
      return p;
    };
    const child = (parent: number, name: string): string => {
      const dir = pathOf(parent);
      return dir === '/' ? `/${name}` : `${dir}/${name}`;
    };
    const entry = (parent: number, name: string, a: Attr): Buffer => entryOut(nodes.lookup(parent, name), a, ENTRY_VALID, ATTR_VALID);
    const owner = (req: Request): Owner => ({ uid: req.uid, gid: req.gid });
    /** A new name in directory req.nodeid (its name at byte `nameAt` of the body), made by `make`, answered with its entry. */
    const made = (req: Request, nameAt: number, make: (p: string, who: Owner) => void): void => {
      const [name] = cstring(req.body, nameAt);
      const p = child(req.nodeid, name);
      make(p, owner(req));
      ok(req, entry(req.nodeid, name, fs.getattr(p)));
    };

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

    function setattr(req: Request): void | Promise<void> {
      const b = req.body;
      const valid = b.readUInt32LE(0);
      const fh = Number(b.readBigUInt64LE(8));
      const byHandle = (valid & FATTR.FH) !== 0;
      const p = byHandle && nodes.path(req.nodeid) === null ? null : pathOf(req.nodeid);
      if (p && valid & FATTR.MODE) fs.chmod(p, b.readUInt32LE(68));
      if (p && valid & (FATTR.UID | FATTR.GID))
        fs.chown(p, valid & FATTR.UID ? b.readUInt32LE(76) : -1, valid & FATTR.GID ? b.readUInt32LE(80) : -1);
      if (p && valid & (FATTR.ATIME | FATTR.MTIME)) {
        // Each time is set only when asked (utimensat's UTIME_OMIT leaves the other as it is).
        const cur = fs.getattr(p);
        const now = Date.now();
        const time = (set: number, isNow: number, secAt: number, nsecAt: number, current: number): number =>
          !(valid & set)
            ? current
            : valid & isNow
              ? now
              : Number(b.readBigInt64LE(secAt)) * 1000 + Math.floor(b.readUInt32LE(nsecAt) / 1e6);
        fs.utimens(p, time(FATTR.ATIME, FATTR.ATIME_NOW, 32, 56, cur.atime), time(FATTR.MTIME, FATTR.MTIME_NOW, 40, 60, cur.mtime));
      }
      const done = (): void => ok(req, attrOut(byHandle ? fs.fgetattr(fh) : fs.getattr(p as string), ATTR_VALID));
      if (valid & FATTR.SIZE) {
        const size = Number(b.readBigUInt64LE(16));
        return (byHandle ? fs.ftruncate(fh, size) : fs.truncate(p as string, size)).then(done);
      }
      done();
    }

    function rename(req: Request, newParent: number, flags: number, names: Buffer): void {
      const [from, at] = cstring(names);
      const [to] = cstring(names, at);
      if (flags & ~RENAME_NOREPLACE) throw fsError('EINVAL', `rename flags ${flags} are not supported`);
      const src = child(req.nodeid, from);
      const dst = child(newParent, to);
      if (flags & RENAME_NOREPLACE) {
        let exists = true;
        try {
          fs.getattr(dst);
        } catch {
          exists = false;
        }
        if (exists) throw fsError('EEXIST', `'${dst}' already exists`);
      }
      fs.rename(src, dst);
      nodes.rename(req.nodeid, from, newParent, to);
      ok(req);
    }

    function xattrReply(req: Request, size: number, value: Buffer): void {
      if (size === 0) return ok(req, u32Out(value.length));
      if (value.length > size) throw fsError('ERANGE', `the value needs ${value.length} bytes, the buffer has ${size}`);
      ok(req, value);
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
          nodes.forget(req.nodeid, Number(b.readBigUInt64LE(0)));
          return;
        case OP.BATCH_FORGET: {
          const count = b.readUInt32LE(0);
          for (let i = 0; i < count; i++) nodes.forget(Number(b.readBigUInt64LE(8 + i * 16)), Number(b.readBigUInt64LE(16 + i * 16)));
          return;
        }
        case OP.INTERRUPT:
          return;
        case OP.LOOKUP:
          return run(req, () => {
            const [name] = cstring(b);
            ok(req, entry(req.nodeid, name, fs.getattr(child(req.nodeid, name))));
          });
        case OP.GETATTR:
          return run(req, () => {
            const byHandle = (b.readUInt32LE(0) & FUSE_GETATTR_FH) !== 0;
            ok(req, attrOut(byHandle ? fs.fgetattr(Number(b.readBigUInt64LE(8))) : fs.getattr(pathOf(req.nodeid)), ATTR_VALID));
          });
        case OP.SETATTR:
          return run(req, () => setattr(req));
        case OP.READLINK:
          return run(req, () => ok(req, Buffer.from(fs.readlink(pathOf(req.nodeid)))));
        case OP.SYMLINK:
          return run(req, () => made(req, 0, (p, who) => fs.symlink(cstring(b, cstring(b)[1])[0], p, who)));
        case OP.MKNOD:
          return run(req, () => made(req, 16, (p, who) => fs.mknod(p, b.readUInt32LE(0), who)));
        case OP.MKDIR:
          return run(req, () => made(req, 8, (p, who) => fs.mkdir(p, b.readUInt32LE(0), who)));
        case OP.UNLINK:
        case OP.RMDIR:
          return run(req, () => {
            const [name] = cstring(b);
            const p = child(req.nodeid, name);
            if (req.opcode === OP.UNLINK) fs.unlink(p);
            else fs.rmdir(p);
            nodes.remove(req.nodeid, name);
            ok(req);
          });
        case OP.RENAME:
          return run(req, () => rename(req, Number(b.readBigUInt64LE(0)), 0, b.subarray(8)));
        case OP.RENAME2:
          return run(req, () => rename(req, Number(b.readBigUInt64LE(0)), b.readUInt32LE(8), b.subarray(16)));
        case OP.LINK:
          return run(req, () => made(req, 8, (p) => fs.link(pathOf(Number(b.readBigUInt64LE(0))), p)));
        case OP.OPEN:
          return run(req, () => ok(req, openOut(fs.open(pathOf(req.nodeid), b.readUInt32LE(0)))));
        case OP.CREATE:
          return run(req, () => {
            const [name] = cstring(b, 16);
            const p = child(req.nodeid, name);
            const fh = fs.create(p, b.readUInt32LE(4), b.readUInt32LE(0), owner(req));
            ok(req, entry(req.nodeid, name, fs.fgetattr(fh)), openOut(fh));
          });
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
          return run(req, () => ok(req, statfsOut(fs.statfs(nodes.path(req.nodeid) ?? undefined))));
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
            fs.setxattr(pathOf(req.nodeid), name, Buffer.from(b.subarray(at, at + size)), b.readUInt32LE(4), owner(req));
            ok(req);
          });
        case OP.GETXATTR:
          return run(req, () => {
            const [name] = cstring(b, 8);
            xattrReply(req, b.readUInt32LE(0), fs.getxattr(pathOf(req.nodeid), name));
          });
        case OP.LISTXATTR:
          return run(req, () => {
            const names = fs.listxattr(pathOf(req.nodeid));
            xattrReply(req, b.readUInt32LE(0), Buffer.from(names.map((n) => `${n}\0`).join('')));
          });
        case OP.REMOVEXATTR:
          return run(req, () => {
            const [name] = cstring(b);
            fs.removexattr(pathOf(req.nodeid), name, owner(req));
            ok(req);
          });
        case OP.OPENDIR:
          return run(req, () => {
            // A listing taken at open: offsets into it stay valid while entries come and go.
            const fh = nextDir++;
            dirs.set(fh, fs.readdir(pathOf(req.nodeid)));
            ok(req, openOut(fh));
          });
        case OP.READDIR:
          return run(req, () => {
            const names = dirs.get(Number(b.readBigUInt64LE(0))) ?? [];
            const size = b.readUInt32LE(16);
            const out: Buffer[] = [];
            let used = 0;
            for (let i = Number(b.readBigUInt64LE(8)); i < names.length; i++) {
              // Inode number unknown (stat tells), type unknown (DT_UNKNOWN): what libfuse sends without stats.
              const d = dirent(0xffffffff, i + 1, 0, names[i]);
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
