import { isAttached, readMounts, type MountEntry } from '../util/mountinfo.js';

/** How often a daemon looks for its mount in /proc/self/mountinfo. */
export const MOUNT_WATCH_MS = 1000;

/**
 * Notices that a daemon's mount was removed from outside (umount, fusermount -u, umount -l, as an
 * administrator or kubelet does): it reads /proc/self/mountinfo every `intervalMs` (asynchronously;
 * never a lookup on the mount, which the daemon itself serves) and calls `onGone` once when the mount
 * is no longer attached. The only sign fuse-native gives: its libfuse loop ends on its own thread
 * and tells nobody.
 */
export class MountWatch {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly own: MountEntry,
    private readonly onGone: () => void,
    private readonly intervalMs = MOUNT_WATCH_MS,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    // An unreadable mountinfo (it never is on Linux) proves nothing: look again next time.
    const mounts = await readMounts().catch(() => null);
    if (this.stopped) return;
    if (mounts && !isAttached(mounts, this.own)) {
      this.stopped = true;
      this.onGone();
      return;
    }
    this.schedule();
  }
}
