import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import Fuse, { type Operations } from 'fuse-native';
import { logger } from '../observability/logger.js';
import { isAttached, isOnTop, poolMountAt, readMounts, topMountAt, type MountEntry } from '../util/mountinfo.js';
import { utimensOpcode, withTrueMtime, type NativeHandler } from './utimens-mtime.js';

const exec = promisify(execFile);

/** Largest write the kernel may send us in one request (it caps this at its own limit, 128 KiB on FUSE 2). */
export const MAX_WRITE = 1024 * 1024;

/**
 * Read-ahead requests the kernel keeps in flight at once (its default is 12). libfuse 2's
 * multi-threaded loop starts a thread whenever all of its threads are busy and ends one whenever
 * more than 10 are idle, and fuse-native gives every new thread a libuv async handle that it never
 * frees. With 12 background reads and a few synchronous ones the thread count kept crossing that
 * line: a daemon had 1291 async handles after three 1 GiB reads, and libuv walks all of them on
 * every wake-up of the event loop. With 8 (the 1 MiB read-ahead window in 128 KiB requests) it had
 * 35, and stays there.
 */
export const MAX_BACKGROUND = 8;

export interface MountOptions {
  fsname: string;
  allowOther?: boolean;
  /** The kernel checks mode bits and owners (default on). */
  defaultPermissions?: boolean;
  extraOptions?: string[];
  /** Kernel read-ahead window for the mount, in KiB (the kernel's default for FUSE is 128; 0 keeps it). */
  readAheadKb?: number;
}

export const DEFAULT_READ_AHEAD_KB = 1024;

let layoutWarned = false;
function warnUnknownLayout(): void {
  if (layoutWarned) return;
  layoutWarned = true;
  logger('fuse').warn(
    'this fuse-native build does not lay out utimens times as 2.2.6 does: utimens sets the modification time to the access time',
  );
}

/**
 * fuse-native hides big_writes and max_write; without them every write is cut to 4 KiB.
 * We extend its option builder. No operation timeout: a slow disk must delay, never fail, a call.
 */
class DynamicFsFuse extends Fuse {
  constructor(
    mnt: string,
    ops: Operations,
    private readonly extra: string[],
    opts: { fsname: string; allowOther?: boolean; defaultPermissions?: boolean },
  ) {
    super(mnt, ops, {
      timeout: false,
      fsname: opts.fsname,
      subtype: 'dynamicfs',
      allowOther: opts.allowOther,
      defaultPermissions: opts.defaultPermissions ?? true,
    });
  }

  // Called by the base constructor, before this class's fields exist: module state only.
  protected override _makeHandlerArray(): NativeHandler[] {
    const handlers = super._makeHandlerArray();
    const op = utimensOpcode();
    if (handlers[op]) handlers[op] = withTrueMtime(handlers[op], warnUnknownLayout);
    return handlers;
  }

  protected override _fuseOptions(): string {
    const base = super._fuseOptions();
    // use_ino: st_ino comes from our inode numbers, so hard links share one.
    // attr_timeout=0: the high-level FUSE API gives each name of a hard-linked file its own kernel
    // inode, so cached sizes would go stale across names; streaming I/O is unaffected (the kernel
    // asks only when a read crosses the size it knows).
    // max_background: see MAX_BACKGROUND.
    // nosuid,nodev: as on the /dev/fuse path (fusermount adds them for other users; root must ask).
    const ours = [
      'nosuid',
      'nodev',
      'big_writes',
      `max_write=${MAX_WRITE}`,
      `max_read=${MAX_WRITE}`,
      'use_ino',
      'attr_timeout=0',
      `max_background=${MAX_BACKGROUND}`,
      ...this.extra,
    ].join(',');
    return base ? `${base},${ours}` : `-o${ours}`;
  }
}

export class FuseMount {
  private fuse: DynamicFsFuse | null = null;
  /** The mount as mountinfo showed it once made (null before, or if it could not be found). */
  own: MountEntry | null = null;

  constructor(
    readonly mountpoint: string,
    private readonly ops: Operations,
    private readonly options: MountOptions,
  ) {}

  async mount(): Promise<void> {
    const mnt = path.resolve(this.mountpoint);
    await fsp.mkdir(mnt, { recursive: true });
    const fuse = new DynamicFsFuse(mnt, this.ops, this.options.extraOptions ?? [], {
      fsname: this.options.fsname,
      allowOther: this.options.allowOther,
      defaultPermissions: this.options.defaultPermissions,
    });
    await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));
    this.fuse = fuse;
    this.own = (await findOwnMount(mnt, this.options.fsname)) ?? null;
    const ra = this.options.readAheadKb ?? DEFAULT_READ_AHEAD_KB;
    if (ra > 0) await setReadAhead(mnt, ra);
  }

  async unmount(): Promise<void> {
    const fuse = this.fuse;
    if (!fuse) return;
    this.fuse = null;
    // Removed from outside (umount, fusermount -u): nothing of ours is there to unmount, and whatever
    // is mounted there now is someone else's. The process exits soon after, closing the connection.
    if (!(await mayUnmountByPath(this.own))) return;
    await new Promise<void>((resolve) =>
      fuse.unmount((err) => {
        if (err) void lazyUnmount(this.mountpoint).finally(resolve);
        else resolve();
      }),
    );
  }
}

/**
 * The kernel reads ahead only 128 KiB on a FUSE mount by default, so a sequential reader waits for
 * one request at a time. A larger window keeps several read requests in flight (measured through
 * fuse-native: 1 GiB read in 1.21 s instead of 1.71 s). Set it after the INIT answer, which resets it.
 */
export async function setReadAhead(mnt: string, kb: number): Promise<void> {
  // The mount's bdi is named by its device number in mountinfo; a stat of the mount would need an
  // answer from the very process that serves it.
  const dev = topMountAt(await readMounts(), path.resolve(mnt))?.dev;
  if (!dev) return;
  await fsp.writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, `${kb}\n`).catch(() => {
    /* not permitted (not root) or no sysfs: the kernel default stays */
  });
}

/** The pool mount just made at `mnt` (fsname `dynamicfs:<pool>`), from mountinfo. */
export async function findOwnMount(mnt: string, fsname: string): Promise<MountEntry | undefined> {
  return poolMountAt(await readMounts(), path.resolve(mnt), fsname);
}

/**
 * Whether a daemon may unmount its mount point by name: only while its own mount (`own`) is what is
 * visible there. Once it was removed from outside, the name may hold a mount someone made since. A
 * mount never found in mountinfo (null) is unmounted by name, as before.
 */
export async function mayUnmountByPath(own: MountEntry | null): Promise<boolean> {
  if (!own) return true;
  const mounts = await readMounts().catch(() => null);
  if (!mounts) return true;
  if (isOnTop(mounts, own)) return true;
  if (isAttached(mounts, own))
    logger('fuse').warn(
      `${own.mountPoint}: another mount now covers ours; leaving both (unmount them by hand: umount -l ${own.mountPoint})`,
    );
  return false;
}

/** Detaches a mount even if its server is gone (ENOTCONN); never throws. */
export async function lazyUnmount(mnt: string): Promise<void> {
  await exec('fusermount', ['-uz', mnt]).catch(() => exec('umount', ['-l', mnt]).catch(() => undefined));
}

/** Whether `mnt` is a mount point according to /proc/self/mountinfo. */
export async function isMounted(mnt: string): Promise<boolean> {
  return topMountAt(await readMounts(), path.resolve(mnt)) !== undefined;
}
