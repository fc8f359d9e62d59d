import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { promisify } from 'node:util';
import { isMounted, lazyUnmount } from '../fuse/mount.js';
import { isNodeError } from '../util/errors.js';
import { VolumeError } from './volumes.js';

const exec = promisify(execFile);

/** Mount flags a bind mount of a volume may carry; anything else is refused. */
export const ALLOWED_MOUNT_FLAGS = new Set(['ro', 'rw', 'nosuid', 'nodev', 'noexec', 'noatime', 'nodiratime', 'relatime', 'strictatime']);

export function mountFlagProblem(flags: string[]): string | null {
  const bad = flags.flatMap((f) => f.split(',')).filter((f) => f !== '' && !ALLOWED_MOUNT_FLAGS.has(f));
  return bad.length ? `mount flags ${bad.join(', ')} are not supported (allowed: ${[...ALLOWED_MOUNT_FLAGS].join(', ')})` : null;
}

/** What is at `target`: nothing mounted, a live mount, or a mount whose FUSE server is gone. */
export async function mountState(target: string): Promise<'none' | 'live' | 'dead'> {
  if (!(await isMounted(target))) {
    try {
      await fsp.stat(target);
    } catch (err) {
      if (isNodeError(err, 'ENOTCONN')) return 'dead';
    }
    return 'none';
  }
  try {
    await fsp.stat(target);
    return 'live';
  } catch (err) {
    return isNodeError(err, 'ENOTCONN') || isNodeError(err, 'EIO') ? 'dead' : 'live';
  }
}

/** Bind-mounts a volume directory of the pool's mount onto `target`, read-only if asked, and confirms it. */
export async function bindVolume(source: string, target: string, readonly: boolean, flags: string[]): Promise<void> {
  await fsp.mkdir(target, { recursive: true });
  try {
    await exec('mount', ['--bind', source, target]);
    const opts = [...new Set([readonly ? 'ro' : 'rw', ...flags.flatMap((f) => f.split(',')).filter((f) => f && f !== 'ro' && f !== 'rw')])];
    // A bind mount takes its flags only on a remount.
    if (readonly || opts.length > 1) await exec('mount', ['-o', `remount,bind,${opts.join(',')}`, target]);
  } catch (err) {
    await lazyUnmount(target);
    throw new VolumeError('BUSY', `bind mount of ${source} on ${target} failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
  }
  if (!(await isMounted(target))) throw new VolumeError('BUSY', `${target} is not in /proc/self/mountinfo after the bind mount`);
}

/** Unmounts `target` (lazily if its FUSE server is gone) and removes the directory. Fine when nothing is there. */
export async function unbindTarget(target: string): Promise<void> {
  for (let i = 0; i < 4 && (await mountState(target)) !== 'none'; i++) {
    await exec('umount', [target]).catch(() => lazyUnmount(target));
  }
  await fsp.rmdir(target).catch((err: unknown) => {
    if (!isNodeError(err, 'ENOENT')) throw err;
  });
}
