import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { logger } from '../../observability/logger.js';
import { abortConnection } from './fusectl.js';
import { findOwnMount, lazyUnmount, mayUnmountByPath } from '../mount.js';
import type { MountEntry } from '../../util/mountinfo.js';
import { Worker } from 'node:worker_threads';
import { IN_HEADER, OUT_HEADER, parseRequest, type Request } from './protocol.js';
import { FREE, type ReaderData, type ReaderMessage } from './reader-slots.js';

const exec = promisify(execFile);
const log = logger('fuse');
/** Request buffers per reader thread: requests whose handlers are still running hold theirs. */
const SLOTS = 4;

export interface SessionOptions {
  /** Shown as the mount's source (`dynamicfs:<pool>`). */
  fsname: string;
  /** The mount's type is `fuse.<subtype>`. */
  subtype: string;
  allowOther: boolean;
  defaultPermissions: boolean;
  /** Largest read and write request, in pages of 4 KiB (the kernel caps it, 256 on most kernels). */
  maxPages: number;
  /** Threads waiting in read(2) on /dev/fuse (see reader-worker.ts). */
  readers: number;
}

/**
 * Answers one request. A handler that still needs `req.body` after it returns (a write that waits
 * for an extent to load) returns a promise: the buffer is not read into again before it settles.
 */
export type Dispatch = (req: Request) => void | Promise<void>;

/**
 * A FUSE connection served without libfuse: /dev/fuse is opened here and handed to mount(8) as its
 * fd 3 (`-o fd=3`, as fusermount does for libfuse), and requests are read from it and answered with
 * one writev each. Mounting needs root (CAP_SYS_ADMIN).
 */
export class KernelSession {
  private fd = -1;
  private ended: Promise<void> | null = null;
  private endNow: (() => void) | null = null;
  private readonly readers: Worker[] = [];
  private readonly bufferSize: number;
  private unmounting = false;
  /** The mount as mountinfo showed it once made (null before, or if it could not be found). */
  own: MountEntry | null = null;
  /**
   * Called once when the connection ends without unmount() having been asked: `cause` is what the
   * readers got (ENODEV: the kernel closed it, because the mount was removed from outside or the
   * connection was aborted) or why a reader thread failed.
   */
  onEnd: ((cause: string) => void) | null = null;

  constructor(
    readonly mountpoint: string,
    private readonly opts: SessionOptions,
    private readonly dispatch: Dispatch,
  ) {
    this.bufferSize = opts.maxPages * 4096 + 4096;
  }

  /** Mounts and starts reading; the kernel's INIT is the first request the dispatcher sees. */
  async mount(): Promise<void> {
    this.fd = fs.openSync('/dev/fuse', 'r+');
    const o = this.opts;
    // nosuid,nodev: a set-user-ID file or a device node stored by one tenant is never honoured by the
    // kernel on this mount (volumes are bind mounts of it and carry their own flags as well).
    const options = [
      'fd=3',
      'rootmode=40000',
      'nosuid',
      'nodev',
      `user_id=${process.getuid?.() ?? 0}`,
      `group_id=${process.getgid?.() ?? 0}`,
      `max_read=${o.maxPages * 4096}`,
      ...(o.allowOther ? ['allow_other'] : []),
      ...(o.defaultPermissions ? ['default_permissions'] : []),
    ];
    try {
      await new Promise<void>((resolve, reject) => {
        // -i: no mount.fuse helper; the type and options go to mount(2) as they are.
        const child = spawn('mount', ['-i', '-t', `fuse.${o.subtype}`, '-o', options.join(','), o.fsname, this.mountpoint], {
          stdio: ['ignore', 'ignore', 'pipe', this.fd],
        });
        let err = '';
        child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', reject);
        child.on('exit', (code) =>
          code === 0 ? resolve() : reject(new Error(`mount ${this.mountpoint}: ${err.trim() || `mount(8) exited with ${code}`}`)),
        );
      });
    } catch (err) {
      fs.closeSync(this.fd);
      this.fd = -1;
      throw err;
    }
    this.ended = new Promise<void>((resolve) => (this.endNow = resolve));
    this.startReaders();
    this.own = (await findOwnMount(this.mountpoint, o.fsname).catch(() => undefined)) ?? null;
  }

  /** Starts the reader threads; each owns SLOTS request buffers. */
  private startReaders(): void {
    for (let r = 0; r < this.opts.readers; r++) {
      const slots = Array.from({ length: SLOTS }, () => new SharedArrayBuffer(this.bufferSize));
      const states = new SharedArrayBuffer(4 * SLOTS);
      const state = new Int32Array(states);
      const views = slots.map((b) => Buffer.from(b));
      const data: ReaderData = { fd: this.fd, slots, states };
      const w = new Worker(new URL('./reader-worker.js', import.meta.url), { workerData: data });
      const free = (slot: number): void => {
        Atomics.store(state, slot, FREE);
        Atomics.notify(state, slot);
      };
      w.on('message', (m: ReaderMessage) => {
        if ('end' in m) return this.end(m.end);
        if (m.length < IN_HEADER) return free(m.slot);
        let pending: void | Promise<void>;
        try {
          pending = this.dispatch(parseRequest(views[m.slot], m.length));
        } catch {
          pending = undefined;
        }
        // A handler that still reads the request keeps its slot until it settles.
        if (pending)
          pending.then(
            () => free(m.slot),
            () => free(m.slot),
          );
        else free(m.slot);
      });
      w.on('error', (err) => this.end(`a reader thread failed: ${err.message}`));
      this.readers.push(w);
    }
  }

  private end(cause: string): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    // A reader still waiting in read(2) ends with the connection (ENODEV); terminate the rest.
    for (const w of this.readers) void w.terminate();
    this.readers.length = 0;
    fs.close(fd, () => undefined);
    this.endNow?.();
    if (!this.unmounting) this.onEnd?.(cause);
  }

  /** Whether the kernel still has the connection open (false once it ended or was unmounted). */
  get connected(): boolean {
    return this.fd >= 0;
  }

  /** Answers request `unique` with `error` (0 or a negative errno) and the reply's bytes. */
  reply(unique: bigint, error: number, ...body: Buffer[]): void {
    if (this.fd < 0) return;
    const h = Buffer.allocUnsafe(OUT_HEADER);
    let len = OUT_HEADER;
    for (const b of body) len += b.length;
    h.writeUInt32LE(len, 0);
    h.writeInt32LE(error, 4);
    h.writeBigUInt64LE(unique, 8);
    try {
      fs.writevSync(this.fd, [h, ...body]);
    } catch (err) {
      // ENOENT: the caller was interrupted and the kernel dropped the request; ENODEV: unmounted.
      // A reply the kernel refuses (EINVAL: our bug) would leave its caller waiting for ever: say EIO.
      if ((err as NodeJS.ErrnoException).code === 'EINVAL' && error === 0) {
        log.error(`the kernel refused the reply to request ${unique} (${len} bytes): answered EIO instead`);
        this.reply(unique, -5);
      }
    }
  }

  private endedWithin(ms: number): Promise<unknown> {
    return Promise.race([this.ended, new Promise((r) => setTimeout(r, ms).unref())]);
  }

  /** Unmounts (lazily when busy) and waits until the kernel has closed the connection. */
  async unmount(): Promise<void> {
    if (!this.ended) return;
    this.unmounting = true;
    // Only our own mount is unmounted by name: once removed from outside, the name is not ours.
    if (await mayUnmountByPath(this.own)) {
      await exec('umount', [this.mountpoint]).catch(() => lazyUnmount(this.mountpoint));
      await this.endedWithin(2000);
    }
    // Bind mounts of volumes or files open through a lazily detached mount keep the connection, and our
    // readers wait in read(2) on it (the process could not even exit): it is aborted. What held it
    // fails with ENOTCONN from then on; a new daemon binds published volumes again.
    if (this.fd >= 0 && this.own) {
      try {
        await abortConnection(this.own.dev);
        await this.endedWithin(2000);
      } catch (err) {
        log.warn(`${this.mountpoint}: ${(err as Error).message}; the daemon may not exit until nothing holds the mount`);
      }
    }
    this.end('unmounted');
  }
}
