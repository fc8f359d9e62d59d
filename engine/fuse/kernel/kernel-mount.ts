import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { FileSystem } from '../../fs/filesystem.js';
import { DEFAULT_READ_AHEAD_KB, MAX_BACKGROUND, setReadAhead, type MountOptions } from '../mount.js';
import type { OpObserver } from '../operations.js';
import { kernelOperations } from './kernel-ops.js';
import { KernelSession } from './session.js';
import type { MountEntry } from '../../util/mountinfo.js';

/** 1 MiB requests: one extent per read or write (the kernel's default cap, fuse_max_pages_limit, is 256). */
const MAX_PAGES = 256;
/** Threads waiting in read(2) on /dev/fuse; each takes the next request as soon as it has handed one on. */
const READERS = 2;

/**
 * The pool's FUSE mount served without libfuse or fuse-native (see session.ts): the kernel sends
 * 1 MiB requests instead of libfuse 2's 128 KiB, and names the caller of each request, so new files
 * belong to whoever made them. Needs root; FuseMount (fuse-native) serves the rest.
 */
export class KernelMount {
  private session: KernelSession | null = null;
  /** Called once if the kernel ends the connection without unmount() (see KernelSession.onEnd). */
  onEnd: ((cause: string) => void) | null = null;

  constructor(
    readonly mountpoint: string,
    private readonly fs: FileSystem,
    private readonly observe: OpObserver,
    private readonly options: MountOptions,
  ) {}

  async mount(): Promise<void> {
    let initialised: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (initialised = resolve));
    const dispatch = kernelOperations(this.fs, this.observe, {
      maxPages: MAX_PAGES,
      maxBackground: MAX_BACKGROUND,
      onInit: () => initialised(),
    });
    const mnt = path.resolve(this.mountpoint);
    await mkdir(mnt, { recursive: true });
    const session: KernelSession = new KernelSession(
      mnt,
      {
        fsname: this.options.fsname,
        subtype: 'dynamicfs',
        allowOther: this.options.allowOther ?? false,
        defaultPermissions: this.options.defaultPermissions ?? true,
        maxPages: MAX_PAGES,
        readers: READERS,
      },
      (req) => handler(req),
    );
    const handler = dispatch(session);
    session.onEnd = (cause) => this.onEnd?.(cause);
    await session.mount();
    this.session = session;
    await ready;
    // After INIT: the kernel sets the mount's read-ahead from its answer.
    const kb = this.options.readAheadKb ?? DEFAULT_READ_AHEAD_KB;
    if (kb > 0) await setReadAhead(mnt, kb);
  }

  /** The mount as mountinfo showed it once made. */
  get own(): MountEntry | null {
    return this.session?.own ?? null;
  }

  /** Whether the kernel still has the connection open: files open through a lazily detached mount, or bind mounts of volumes, keep it. */
  get connected(): boolean {
    return this.session?.connected ?? false;
  }

  async unmount(): Promise<void> {
    const s = this.session;
    this.session = null;
    await s?.unmount();
  }
}
