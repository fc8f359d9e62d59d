import type http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { changedFields, CREATION_FIELDS, isLiveField, readConfigFile } from '../config/load.js';
import type { EngineConfig } from '../config/schema.js';
import { poolCommands, type CommandContext } from '../control/commands.js';
import { serveControl } from '../control/socket.js';
import { FileSystem } from '../fs/filesystem.js';
import { DEFAULT_READ_AHEAD_KB, FuseMount, isMounted, lazyUnmount } from '../fuse/mount.js';
import { fuseOperations } from '../fuse/operations.js';
import { KernelMount } from '../fuse/kernel/kernel-mount.js';
import { rebuild, rebuildInterrupted } from '../heal/rebuild.js';
import { handleHttp, type Host } from '../report/http-api.js';
import { serveHttp } from '../observability/http-server.js';
import { isLoopbackListen, parseListen } from '../util/listen.js';
import { configureLogging, events, logger, type LogFormat } from '../observability/logger.js';
import { PoolWatch } from '../report/pool-watch.js';
import { newTraceId, withTrace } from '../observability/trace.js';
import { isEventLevel } from '../observability/event-log.js';
import { observeFuse } from '../fuse/fuse-metrics.js';
import { Pool } from '../pool/pool.js';
import { restorePublications } from '../control/volume-commands.js';
import { clearStaging, mountState } from '../volumes/publish.js';
import { POOL_STAGING } from '../pool/layout.js';
import { nextScrubDue, Schedule } from './schedules.js';
import { MOUNT_WATCH_MS, MountWatch } from '../fuse/mount-watch.js';
import { recordUnmount } from '../pool/unmount-record.js';
import { isAttached, readMounts } from '../util/mountinfo.js';

export interface PoolDaemonOptions {
  /** Where to FUSE-mount the pool; null serves it (control socket, HTTP endpoints) without a mount. */
  mountpoint: string | null;
  allowOther?: boolean;
  /** HOST:PORT for /metrics, /health and the rest; overrides monitoring.metrics_listen. */
  metricsListen?: string;
  /** A configuration file applied to the pool at start and re-read on SIGHUP. */
  configFile?: string;
  logFormat?: LogFormat;
}

const log = logger('daemon');

function loggingFrom(c: EngineConfig, format: LogFormat | undefined): Parameters<typeof configureLogging>[0] {
  return {
    enabled: c.monitoring.logging,
    level: c.monitoring.log_level,
    format: format ?? c.monitoring.log_format,
    eventLogSize: c.monitoring.event_log_size,
  };
}

/**
 * Hosts one pool until SIGTERM or SIGINT: optionally its FUSE mount, the control socket, the
 * HTTP endpoints, automatic rebuilds, scheduled scrubs and history samples. This process must never
 * touch its own mount with blocking calls: it would deadlock.
 */
/**
 * Root serves /dev/fuse itself (fuse/kernel/): 1 MiB requests, and new files owned by their
 * creator. Anyone else goes through fuse-native and fusermount. DYNAMICFS_FUSE=fuse-native forces
 * the binding.
 */
function servesKernelDirectly(): boolean {
  return process.getuid?.() === 0 && process.env.DYNAMICFS_FUSE !== 'fuse-native';
}

export async function runPoolDaemon(poolDir: string, opts: PoolDaemonOptions): Promise<void> {
  const mnt = opts.mountpoint ? path.resolve(opts.mountpoint) : null;
  // A filesystem daemon must not die on a stray rejection: log it loudly and keep serving.
  process.on('unhandledRejection', (reason) =>
    log.error(`BUG: unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`),
  );
  if (mnt && (await isMounted(mnt))) {
    // The mount of a daemon that died: detach it, so this daemon can serve the pool there again.
    if ((await mountState(mnt)) !== 'dead') throw new Error(`${mnt} is already a mount point; unmount it first (fusermount -u ${mnt})`);
    log.warn(`${mnt} holds the dead mount of a previous daemon: detaching it`);
    await lazyUnmount(mnt);
  }
  // A listen address that cannot work fails the start before anything is mounted.
  if (opts.metricsListen) parseListen(opts.metricsListen);
  const pool = await Pool.open(poolDir, { mountpoint: mnt });
  try {
    if (opts.configFile) pool.applyConfig(await readConfigFile(opts.configFile), opts.configFile);
  } catch (err) {
    await pool.close();
    throw err;
  }
  configureLogging(loggingFrom(pool.config, opts.logFormat));
  pool.startMirrorThread();
  const fs = new FileSystem(pool);
  if (pool.config.security.audit_logging) {
    const audit = logger('audit');
    fs.onAudit = (op, target, detail) => audit.info(`${op} ${target}`, { pool: pool.name, op, path: target, ...detail });
  }
  // A long-lived daemon commits its buffer memory up front instead of faulting it in on the data path.
  fs.data.extents.buffers.prefault();
  const watch = new PoolWatch(pool, fs);
  const mountOptions = {
    fsname: `dynamicfs:${pool.name}`,
    allowOther: opts.allowOther ?? pool.config.security.allow_other,
    defaultPermissions: pool.config.security.access_control === 'posix',
    readAheadKb: pool.config.performance.read_ahead ? DEFAULT_READ_AHEAD_KB : 0,
  };
  const observer = observeFuse(pool.name, () => pool.config.monitoring.slow_op_ms);
  const fuse = !mnt
    ? null
    : servesKernelDirectly()
      ? new KernelMount(mnt, fs, observer, mountOptions)
      : new FuseMount(mnt, fuseOperations(fs, observer), mountOptions);
  let control: net.Server | null = null;
  let httpServer: http.Server | null = null;
  let ready = false;
  let stopping: Promise<void> | null = null;
  const schedules: Schedule[] = [];

  // Set once the mount was found gone from mountinfo while the daemon still runs (see watchMount).
  let mountGone: string | null = null;
  let mountWatch: MountWatch | null = null;
  const stop = (why: string, fromOutside = false): Promise<void> => {
    stopping ??= (async () => {
      ready = false;
      log.event(
        'info',
        `stopping (${why})${mnt ? `: flushing${fromOutside || mountGone ? ` (the mount at ${mnt} is gone)` : ` and unmounting ${mnt}`}` : ''}`,
        { pool: pool.name },
      );
      mountWatch?.stop();
      for (const s of schedules) s.stop();
      control?.close();
      httpServer?.close();
      await fuse?.unmount();
      await fs.close();
      watch.close();
      if (mnt) {
        try {
          recordUnmount(pool.store, {
            at: new Date().toISOString(),
            mountpoint: mnt,
            pid: process.pid,
            reason: mountGone && !fromOutside ? `${mountGone}; then ${why}` : why,
            fromOutside: fromOutside || mountGone !== null,
          });
        } catch (err) {
          log.warn(`could not record how the mount ended: ${(err as Error).message}`, { pool: pool.name });
        }
      }
      await pool.close();
      log.info('stopped cleanly', { pool: pool.name });
    })();
    return stopping;
  };

  // Signal handlers go in before the mount: a SIGTERM that arrives while the daemon is still starting
  // must stop it cleanly, not kill it with the mount still attached. `finish` ends the daemon: with an
  // error message, runPoolDaemon throws it once everything is flushed and released (exit code 1).
  let finish: (error: string | null) => void = () => undefined;
  const stopped = new Promise<string | null>((resolve) => (finish = resolve));
  const stopAndFinish = (why: string, opts: { fromOutside?: boolean; error?: string } = {}): void =>
    void stop(why, opts.fromOutside).then(
      () => finish(opts.error ?? null),
      (err: unknown) => {
        log.error(`shutdown error: ${String(err)}`);
        finish(opts.error ?? null);
      },
    );
  const onSignal = (sig: NodeJS.Signals) => stopAndFinish(sig);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  process.on(
    'SIGHUP',
    () =>
      void withTrace(
        'reload',
        async () => {
          try {
            const file = opts.configFile ? await readConfigFile(opts.configFile) : pool.configFile;
            const changed = pool.applyConfig(file, opts.configFile ?? 'pool configuration');
            if (!changed.length) log.info('SIGHUP: configuration unchanged', { pool: pool.name });
          } catch (err) {
            log.error(`SIGHUP: configuration refused, keeping the current one: ${(err as Error).message}`, { pool: pool.name });
          }
        },
        newTraceId(),
      ),
  );

  /**
   * The mount taken away from outside (an administrator's umount or fusermount -u, kubelet, umount -l):
   * the daemon flushes what is open, records it, releases the pool and exits 0, so the pool can be
   * mounted again. Served on /dev/fuse, the kernel tells us: the readers get ENODEV once it closes the
   * connection, which it does when nothing holds the mount any more. Files still open through a lazily
   * detached mount, or bind mounts of published volumes, hold it: the daemon serves them until then
   * (status and /readyz say the mount is gone). Through fuse-native nothing tells us: the daemon reads
   * mountinfo every second and ends as soon as its mount is no longer there.
   */
  const removedFromOutside = (how: string): void => {
    if (stopping) return;
    log.event('warn', `the mount at ${mnt} was removed from outside (${how}): flushing, releasing pool ${pool.name} and exiting`, {
      pool: pool.name,
      mountpoint: mnt,
    });
    stopAndFinish('the mount was removed from outside', { fromOutside: true });
  };
  const watchMount = (): void => {
    const own = fuse?.own;
    if (!own) return;
    if (fuse instanceof KernelMount) {
      fuse.onEnd = (cause) => {
        if (stopping) return;
        // The kernel closed the connection: ENODEV after a umount; ECONNABORTED when the last file open
        // through a lazily detached mount closed. With our mount still attached it was aborted
        // (fusectl): the dead mount is detached on the way out.
        if (cause === 'ENODEV' || cause === 'ECONNABORTED') {
          void readMounts().then(
            (ms) =>
              isAttached(ms, own)
                ? removedFromOutside('its FUSE connection was aborted')
                : removedFromOutside('the kernel closed its connection'),
            () => removedFromOutside('the kernel closed its connection'),
          );
          return;
        }
        log.error(`the FUSE connection of ${mnt} failed (${cause}): flushing, releasing pool ${pool.name} and exiting`, {
          pool: pool.name,
        });
        stopAndFinish(`the FUSE connection failed: ${cause}`, { error: `the FUSE connection of ${mnt} failed: ${cause}` });
      };
    }
    mountWatch = new MountWatch(own, () => {
      if (stopping) return;
      if (!(fuse instanceof KernelMount)) return removedFromOutside('it is no longer in /proc/self/mountinfo');
      // Served on /dev/fuse: ENODEV follows at once unless something still holds the connection. Give
      // it a moment, so that a plain umount is not reported as a lazy one.
      setTimeout(() => {
        if (stopping) return;
        if (!fuse.connected) return removedFromOutside('the kernel closed its connection');
        mountGone = `the mount at ${mnt} was removed from outside`;
        log.event(
          'warn',
          `the mount at ${mnt} was removed from outside (lazily): files still open through it or bind mounts of volumes keep its connection, and pool ${pool.name} is served to them until the last goes, then the daemon exits (to end it now: dynamicfs unmount ${pool.dir})`,
          { pool: pool.name, mountpoint: mnt },
        );
      }, MOUNT_WATCH_MS).unref();
    });
    mountWatch.start();
  };

  const host: Host = {
    pools: () => [watch],
    ready: () =>
      mountGone
        ? { ready: false, reason: mountGone }
        : ready
          ? { ready: true, reason: mnt ? `pool ${pool.name} mounted at ${mnt}` : `pool ${pool.name} open` }
          : { ready: false, reason: stopping ? 'stopping' : 'starting' },
  };
  // The HTTP address is taken before the mount: an address in use fails the start with nothing mounted.
  try {
    const listen = opts.metricsListen ?? pool.config.monitoring.metrics_listen;
    if (listen) {
      const scope = isLoopbackListen(listen) ? 'all' : 'network';
      httpServer = await serveHttp(listen, (target) => handleHttp(target, host, scope));
    }
  } catch (err) {
    await pool.close();
    throw err;
  }
  try {
    await fuse?.mount();
  } catch (err) {
    httpServer?.close();
    await pool.close();
    throw new Error(`mounting ${mnt} failed: ${(err as Error).message}`);
  }
  const ctx: CommandContext = { pool, fs, mountpoint: mnt, daemon: true };
  try {
    control = await serveControl(
      ctx,
      {
        shutdown: async () => {
          setImmediate(() => void stop('shutdown request').then(() => process.exit(0)));
          return { stopping: true };
        },
        // `dynamicfs serve` forwards requests here and says whether they came from a network address.
        http: async (args) => handleHttp(String(args.path ?? '/'), host, args.network === true ? 'network' : 'all'),
        events: async (args) => {
          const level = typeof args.level === 'string' ? args.level : undefined;
          if (level && !isEventLevel(level)) throw new Error(`--level '${level}' is not one of trace, debug, info, warn, error, fatal`);
          return events.list({
            minLevel: level,
            component: typeof args.component === 'string' ? args.component : undefined,
            since: typeof args.since === 'string' ? new Date(args.since) : undefined,
          });
        },
      },
      () => watch.invalidate(),
    );
  } catch (err) {
    httpServer?.close();
    if (mnt) await lazyUnmount(mnt);
    await pool.close();
    throw err;
  }

  watchMount();

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
    rebuilding = withTrace('auto-rebuild', () => {
      log.event('info', `auto-rebuild: ${why}`, { pool: pool.name });
      return pool
        .track('rebuild (automatic)', (onProgress) => rebuild(pool, fs.data.extents, { onProgress, ...pool.rebuildLimits }))
        .then(() => undefined)
        .catch((err: unknown) => log.error(`auto-rebuild failed: ${String(err)}`, { pool: pool.name }));
    }).finally(() => {
      rebuilding = null;
      watch.invalidate();
      if (again) {
        again = false;
        startRebuild('another disk failed during the last run');
      }
    });
  };
  pool.onDiskHealthChange = (id, state, reason) => {
    watch.invalidate();
    if (state === 'failed') startRebuild(`disk ${id} failed (${reason})`);
  };
  pool.onConfigChange = (next, previous) => {
    configureLogging(loggingFrom(next, opts.logFormat));
    const changed = changedFields(previous, next);
    const creationOnly = changed.filter((f) => CREATION_FIELDS.includes(f));
    const restart = changed.filter((f) => !isLiveField(f) && !creationOnly.includes(f));
    log.event('info', `configuration changed: ${changed.join(', ') || 'nothing'}`, {
      pool: pool.name,
      applied: changed.filter(isLiveField),
      needRestart: restart,
      creationOnly,
    });
    if (restart.length) log.warn(`these fields take effect at the next mount: ${restart.join(', ')}`, { pool: pool.name, fields: restart });
    if (creationOnly.length)
      log.warn(`these fields apply to new pools only (this pool keeps its layout): ${creationOnly.join(', ')}`, {
        pool: pool.name,
        fields: creationOnly,
      });
  };
  if (mnt) {
    await clearStaging(path.join(pool.dir, POOL_STAGING));
    const restored = await restorePublications(ctx);
    if (restored) log.event('info', `re-bound ${restored} published volume(s) after a restart`, { pool: pool.name });
  }
  if (rebuildInterrupted(pool)) startRebuild('resuming a rebuild that was interrupted', true);
  else if (pool.disks.all().some((d) => d.health === 'failed')) startRebuild('a disk was already failed at mount');

  // Scheduled scrubs (reliability.auto_scrub, scrub_interval, scrub_repair, scrub_bandwidth, all live).
  schedules.push(
    new Schedule(
      () => pool.config.reliability.auto_scrub && pool.activeOperation === null,
      () => nextScrubDue(pool),
      () =>
        withTrace('scheduled scrub', async () => {
          const r = pool.config.reliability;
          log.event('info', 'scheduled scrub starting', { pool: pool.name, repair: r.scrub_repair });
          try {
            await poolCommands.scrub(ctx, { repair: r.scrub_repair, bandwidth: r.scrub_bandwidth || undefined });
          } catch (err) {
            log.error(`scheduled scrub failed: ${String(err)}`, { pool: pool.name });
          }
          watch.invalidate();
        }),
      () => Math.min(30_000, (pool.config.reliability.scrub_interval * 1000) / 4),
    ),
  );
  // Usage samples for growth forecasts and error-rate history.
  let lastSample = 0;
  schedules.push(
    new Schedule(
      () => true,
      () => lastSample + pool.config.monitoring.history_interval * 1000,
      async () => {
        lastSample = Date.now();
        await pool.disks.refreshSpace();
        // A disk reachable again, or a directory that got a mount of its own: its domain follows.
        await pool.disks.refreshDomains();
        pool.recordUsage();
      },
      () => Math.min(30_000, (pool.config.monitoring.history_interval * 1000) / 2),
    ),
  );
  await pool.disks.refreshSpace();
  pool.recordUsage();
  lastSample = Date.now();
  for (const s of schedules) s.start();

  // Fragment files of older versions were 0644: made 0600 in the background (once per pool).
  void pool.tightenFragmentFiles().then(
    (n) => n && log.event('info', `made ${n} fragment file(s) of an older version private (0600)`, { pool: pool.name }),
    (err: unknown) => log.warn(`could not make every fragment file private: ${String(err)}`, { pool: pool.name }),
  );
  // Extents with fragments together in one failure domain (an older pool, or one that allowed shared
  // domains): counted by status, which assesses every extent in batches, off the start.
  void watch.status().then(
    (s) => {
      if (s.failureDomains.sharedExtents)
        log.event('warn', `${s.failureDomains.sharedExtents} extent(s) have fragments together in one failure domain`, {
          pool: pool.name,
          sharedExtents: s.failureDomains.sharedExtents,
        });
    },
    () => undefined,
  );
  ready = true;
  const servedBy = fuse instanceof KernelMount ? '/dev/fuse directly' : 'fuse-native';
  log.event(
    'info',
    mnt
      ? `mounted pool ${pool.name} (${pool.id}) at ${mnt} (served through ${servedBy}), pid ${process.pid}`
      : `serving pool ${pool.name} (${pool.id}), pid ${process.pid}`,
    {
      pool: pool.name,
      mountpoint: mnt,
      fuse: mnt ? servedBy : null,
      metrics: httpServer ? (opts.metricsListen ?? pool.config.monitoring.metrics_listen) : null,
    },
  );
  const error = await stopped;
  if (error) throw new Error(error);
}
