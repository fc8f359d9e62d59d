import type net from 'node:net';
import path from 'node:path';
import { serveControl } from '../control/socket.js';
import { FileSystem } from '../fs/filesystem.js';
import { fuseOperations } from '../fuse/operations.js';
import { FuseMount, isMounted, lazyUnmount } from '../fuse/mount.js';
import { Pool } from '../pool/pool.js';
import { rebuild, rebuildInterrupted } from '../heal/rebuild.js';

export interface MountDaemonOptions {
  allowOther?: boolean;
  log?: (msg: string) => void;
}

/**
 * Serves one pool at one mount point until SIGTERM or SIGINT, then flushes, unmounts and releases
 * the pool. This process must never touch its own mount with blocking calls: it would deadlock.
 */
export async function runMountDaemon(poolDir: string, mountpoint: string, opts: MountDaemonOptions = {}): Promise<void> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${new Date().toISOString()} ${m}\n`));
  const mnt = path.resolve(mountpoint);
  if (await isMounted(mnt)) throw new Error(`${mnt} is already a mount point; unmount it first (fusermount -u ${mnt})`);
  // A filesystem daemon must not die on a stray rejection: log it loudly and keep serving.
  process.on('unhandledRejection', (reason) => log(`BUG: unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`));
  const pool = await Pool.open(poolDir, { mountpoint: mnt });
  const fs = new FileSystem(pool);
  // A long-lived daemon commits its buffer memory up front instead of faulting it in on the data path.
  fs.data.extents.buffers.prefault();
  const fuse = new FuseMount(mnt, fuseOperations(fs, (op, _ms, errno, err) => {
    if (errno === -5) log(`${op} failed with EIO: ${err instanceof Error ? err.message : String(err)}`);
  }), { fsname: `dynamicfs:${pool.name}`, allowOther: opts.allowOther });
  let control: net.Server | null = null;
  let stopping: Promise<void> | null = null;

  const stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      log(`stopping (${why}): flushing and unmounting ${mnt}`);
      control?.close();
      await fuse.unmount();
      await fs.close();
      await pool.close();
      log('stopped cleanly');
    })();
    return stopping;
  };

  try {
    await fuse.mount();
  } catch (err) {
    await pool.close();
    throw new Error(`mounting ${mnt} failed: ${(err as Error).message}`);
  }
  try {
    control = await serveControl({ pool, fs, mountpoint: mnt }, { shutdown: async () => { setImmediate(() => void stop('shutdown request').then(() => process.exit(0))); return { stopping: true }; } });
  } catch (err) {
    await lazyUnmount(mnt);
    await pool.close();
    throw err;
  }
  // Auto-rebuild: when a disk turns failed, re-protect what it held (one run at a time, re-run if
  // another disk fails meanwhile).
  let rebuilding: Promise<void> | null = null;
  let again = false;
  const startRebuild = (why: string, evenIfOff = false): void => {
    if (!pool.autoRebuild && !evenIfOff) return;
    if (rebuilding) {
      again = true;
      return;
    }
    log(`auto-rebuild: ${why}`);
    rebuilding = pool
      .track('rebuild (automatic)', (onProgress) => rebuild(pool, fs.data.extents, { onProgress, ...pool.rebuildLimits }))
      .then((r) => log(`auto-rebuild done: ${r.extents.rebuilt} rebuilt, ${r.extents.failed} failed, ${r.bytesWritten} bytes written`))
      .catch((err: unknown) => log(`auto-rebuild failed: ${String(err)}`))
      .finally(() => {
        rebuilding = null;
        if (again) {
          again = false;
          startRebuild('another disk failed during the last run');
        }
      });
  };
  pool.onDiskHealthChange = (id, state, reason) => {
    log(`disk ${id} -> ${state}: ${reason}`);
    if (state === 'failed') startRebuild(`disk ${id} failed (${reason})`);
  };
  if (rebuildInterrupted(pool)) startRebuild('resuming a rebuild that was interrupted', true);
  else if (pool.disks.all().some((d) => d.health === 'failed')) startRebuild('a disk was already failed at mount');
  log(`mounted pool ${pool.name} (${pool.id}) at ${mnt}, pid ${process.pid}`);
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => void stop(sig).then(resolve, (err: unknown) => {
      log(`shutdown error: ${String(err)}`);
      resolve();
    });
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    process.on('SIGHUP', () => log('SIGHUP: nothing to reload yet'));
  });
}
