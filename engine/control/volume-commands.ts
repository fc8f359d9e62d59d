import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { assessAll } from '../check/extent-health.js';
import { formatPolicy } from '../redundancy/policy.js';
import { logger } from '../observability/logger.js';
import { POOL_STAGING } from '../pool/layout.js';
import {
  bindVolume,
  isOurMount,
  mountFlagProblem,
  mountState,
  PRIVILEGED_MOUNT_FLAGS,
  unbindTarget,
  type VolumeMountIdentity,
} from '../volumes/publish.js';
import { poolMountAt, readMounts } from '../util/mountinfo.js';
import { VolumeError, volumesOf, type VolumeRow } from '../volumes/volumes.js';
import { jsonStrings, type CommandArgs } from './args.js';
import type { CommandContext, PoolCommandTable } from './context.js';
import type { PoolCommandName, VolumeInfo } from './protocol.js';

const log = logger('volumes');

/** `root`: the directory the target had to lie strictly inside when it was published (the kubelet's). */
interface Publication {
  target: string;
  volume: string;
  readonly: boolean;
  flags: string[];
  root: string;
}

function text(args: CommandArgs, key: string): string {
  const v = args[key];
  if (typeof v !== 'string' || v === '') throw new VolumeError('INVALID', `missing argument: ${key}`);
  return v;
}

function int(args: CommandArgs, key: string): number {
  const v = args[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new VolumeError('INVALID', `${key} must be a whole number of bytes`);
  return v;
}

export function publications(ctx: CommandContext, volume?: string): Publication[] {
  return ctx.pool.store.publications
    .all()
    .filter((r) => volume === undefined || r.volume === volume)
    .map((r) => ({
      // Rows of older versions have no root: their target's own directory is the most they may claim.
      ...r,
      root: r.root ?? path.dirname(r.target),
    }));
}

/** Where publications are prepared (see bindVolume): in the pool directory, which only the engine enters. */
function staging(ctx: CommandContext): string {
  return path.join(ctx.pool.dir, POOL_STAGING);
}

/** How a bind mount of `volume` of this pool shows in mountinfo. */
function identity(ctx: CommandContext, volume: string): Required<VolumeMountIdentity> {
  return { fsname: `dynamicfs:${ctx.pool.name}`, volume };
}

function describe(ctx: CommandContext, v: VolumeRow): VolumeInfo {
  return { ...v, usage: volumesOf(ctx.pool, ctx.fs).usageOf(v.name), published: publications(ctx, v.name).map((p) => p.target) };
}

/**
 * The volume's directory in the pool's mount, which must be there: once the mount was removed from
 * outside (umount), the name leads to the directory under it.
 */
async function source(ctx: CommandContext, volume: string): Promise<string> {
  if (!ctx.mountpoint)
    throw new VolumeError('BUSY', `pool ${ctx.pool.name} is served without a mount; volumes can be published only from a mounted pool`);
  if (!poolMountAt(await readMounts(), ctx.mountpoint, `dynamicfs:${ctx.pool.name}`))
    throw new VolumeError(
      'BUSY',
      `the mount of pool ${ctx.pool.name} at ${ctx.mountpoint} is gone (removed from outside); publish again once the pool is mounted anew (the node agent restarts its daemon; by hand: dynamicfs unmount ${ctx.pool.dir}, then dynamicfs mount)`,
    );
  return path.join(ctx.mountpoint, volume);
}

/** Health of a volume's extents: abnormal when any is degraded or unrecoverable. */
async function extentCondition(ctx: CommandContext, v: VolumeRow): Promise<{ abnormal: boolean; message: string }> {
  const inodes = new Set(ctx.pool.store.subtreeInodes(v.ino));
  const counts = { degraded: 0, unrecoverable: 0 };
  await assessAll(ctx.pool, (a) => {
    if (inodes.has(a.extent.ino) && a.health !== 'healthy') counts[a.health]++;
  });
  if (counts.unrecoverable)
    return { abnormal: true, message: `${counts.unrecoverable} extent(s) unrecoverable: some data is lost (see 'dynamicfs status')` };
  if (counts.degraded)
    return { abnormal: true, message: `${counts.degraded} extent(s) degraded: redundancy reduced, data readable; rebuild pending` };
  return { abnormal: false, message: 'healthy' };
}

/** Re-binds every recorded publication whose mount is gone or dead (after the daemon restarted). */
export async function restorePublications(ctx: CommandContext): Promise<number> {
  let restored = 0;
  for (const p of publications(ctx)) {
    const state = await mountState(p.target);
    if (state === 'live') continue;
    // Unpublished while this daemon was down (the CSI plugin unmounted it and removed the directory): forget it.
    if (
      state === 'none' &&
      !(await fsp.stat(p.target).then(
        () => true,
        () => false,
      ))
    ) {
      ctx.pool.store.publications.remove(p.target);
      log.info(`publication of ${p.volume} at ${p.target} dropped: the target is gone`, {
        pool: ctx.pool.name,
        volume: p.volume,
        target: p.target,
      });
      continue;
    }
    try {
      // The directory stays: if binding fails now, the next start tries again.
      if ((await unbindTarget(p.target, identity(ctx, p.volume), true)) === 'foreign')
        throw new Error(`something else is mounted at ${p.target} now`);
      await bindVolume({
        source: await source(ctx, p.volume),
        target: p.target,
        root: p.root,
        readonly: p.readonly,
        flags: p.flags,
        identity: identity(ctx, p.volume),
        staging: staging(ctx),
      });
      restored++;
      log.event('info', `re-bound volume ${p.volume} at ${p.target} (was ${state})`, {
        pool: ctx.pool.name,
        volume: p.volume,
        target: p.target,
      });
    } catch (err) {
      log.error(`could not re-bind volume ${p.volume} at ${p.target}: ${(err as Error).message}`, {
        pool: ctx.pool.name,
        volume: p.volume,
        target: p.target,
      });
    }
  }
  return restored;
}

/** Volume commands, served by the pool's daemon (the CSI plugin calls them over the control socket). */
export const volumeCommands: PoolCommandTable<Extract<PoolCommandName, `volume-${string}`>> = {
  async 'volume-create'(ctx, args) {
    const context = typeof args.context === 'string' ? (JSON.parse(args.context) as Record<string, string>) : {};
    const { volume, created } = volumesOf(ctx.pool, ctx.fs).create({
      name: text(args, 'name'),
      capacity: int(args, 'capacity'),
      policy: typeof args.policy === 'string' ? args.policy : undefined,
      tier: typeof args.tier === 'string' ? args.tier : null,
      ephemeral: args.ephemeral === true,
      context,
      inodeLimit: args.inodes === undefined || args.inodes === null ? undefined : int(args, 'inodes'),
    });
    if (created)
      log.event(
        'info',
        `volume ${volume.name} created: ${volume.capacity} bytes, ${volume.policy}${volume.tier ? `, tier ${volume.tier}` : ''}`,
        { pool: ctx.pool.name, volume: volume.name },
      );
    return { volume: describe(ctx, volume), created };
  },

  async 'volume-delete'(ctx, args) {
    const name = text(args, 'name');
    const pubs = publications(ctx, name);
    if (pubs.length) throw new VolumeError('BUSY', `volume ${name} is still published at ${pubs.map((p) => p.target).join(', ')}`);
    // Mounted somewhere without a record (a publish that failed half-way, a bind made by hand): still in use.
    const bound = (await readMounts()).filter((m) => isOurMount(m, identity(ctx, name)));
    if (bound.length) throw new VolumeError('BUSY', `volume ${name} is still mounted at ${bound.map((m) => m.mountPoint).join(', ')}`);
    const deleted = volumesOf(ctx.pool, ctx.fs).delete(name);
    if (deleted) log.event('info', `volume ${name} deleted`, { pool: ctx.pool.name, volume: name });
    return { deleted };
  },

  async 'volume-list'(ctx) {
    return {
      volumes: volumesOf(ctx.pool, ctx.fs)
        .list()
        .map((v) => describe(ctx, v)),
    };
  },

  async 'volume-get'(ctx, args) {
    const v = volumesOf(ctx.pool, ctx.fs).get(text(args, 'name'));
    return { volume: v ? describe(ctx, v) : null };
  },

  async 'volume-expand'(ctx, args) {
    const v = volumesOf(ctx.pool, ctx.fs).expand(text(args, 'name'), int(args, 'capacity'));
    return { volume: describe(ctx, v) };
  },

  async 'volume-capacity'(ctx, args) {
    const policy = typeof args.policy === 'string' ? args.policy : undefined;
    const tier = typeof args.tier === 'string' ? args.tier : null;
    return { available: volumesOf(ctx.pool, ctx.fs).available(policy ?? formatPolicy(ctx.pool.settings.defaultPolicy), tier) };
  },

  async 'volume-publish'(ctx, args) {
    const name = text(args, 'name');
    const target = path.resolve(text(args, 'target'));
    // An older CSI plugin sends no root (it checked the target itself): the target's own directory.
    const root = typeof args.root === 'string' && args.root !== '' ? path.resolve(args.root) : path.dirname(target);
    if (typeof args.root !== 'string')
      log.warn(`volume-publish of ${target} without a target root (an older CSI plugin): only its own directory is checked`, {
        pool: ctx.pool.name,
        target,
      });
    const flags = jsonStrings(args, 'flags', () => true, 'mount flags') ?? [];
    // A StorageClass may say ro among its mount options: as read-only as the request's own flag.
    const readonly = args.readonly === true || flags.flatMap((f) => f.split(',')).includes('ro');
    // suid and dev arrive only when the CSI plugin's operator allowed them (it checked them first).
    const problem = mountFlagProblem(flags, PRIVILEGED_MOUNT_FLAGS);
    if (problem) throw new VolumeError('INVALID', problem);
    if (!volumesOf(ctx.pool, ctx.fs).get(name)) throw new VolumeError('NOT_FOUND', `no volume ${name} in pool ${ctx.pool.name}`);
    const existing = publications(ctx).find((p) => p.target === target);
    if (existing) {
      if (existing.volume !== name) throw new VolumeError('EXISTS', `${target} already holds volume ${existing.volume}`);
      if (existing.readonly !== readonly)
        throw new VolumeError('EXISTS', `${target} already holds volume ${name} ${existing.readonly ? 'read-only' : 'read-write'}`);
      const state = await mountState(target);
      if (state === 'live') return { target, published: false };
      if (state === 'dead' && (await unbindTarget(target, identity(ctx, name), true)) === 'foreign')
        throw new VolumeError('BUSY', `${target} holds a mount this driver did not make`);
    }
    await bindVolume({
      source: await source(ctx, name),
      target,
      root,
      readonly,
      flags,
      identity: identity(ctx, name),
      staging: staging(ctx),
    });
    ctx.pool.store.publications.put({ target, volume: name, readonly, flags, root }, Date.now());
    log.info(`volume ${name} published at ${target}${readonly ? ' (read-only)' : ''}`, { pool: ctx.pool.name, volume: name, target });
    return { target, published: true };
  },

  /**
   * Unmounts a publication this daemon recorded. A target it never published is not touched, whatever
   * is mounted there (another pod's tmpfs, another driver's volume): `recorded: false` says so.
   */
  async 'volume-unpublish'(ctx, args) {
    const target = path.resolve(text(args, 'target'));
    const pub = publications(ctx).find((p) => p.target === target);
    if (!pub) return { target, volume: null, recorded: false };
    const outcome = await unbindTarget(target, identity(ctx, pub.volume));
    if (outcome === 'foreign') {
      log.warn(`unpublish of ${target}: the mount there is not volume ${pub.volume}'s; left alone`, {
        pool: ctx.pool.name,
        volume: pub.volume,
        target,
      });
      throw new VolumeError(
        'BUSY',
        `${target} holds a mount this driver did not make (another was mounted over volume ${pub.volume}); it was left alone`,
      );
    }
    ctx.pool.store.publications.remove(target);
    log.info(`volume ${pub.volume} unpublished from ${target}`, { pool: ctx.pool.name, volume: pub.volume, target });
    return { target, volume: pub.volume, recorded: true };
  },

  async 'volume-stats'(ctx, args) {
    const v = volumesOf(ctx.pool, ctx.fs).get(text(args, 'name'));
    if (!v) throw new VolumeError('NOT_FOUND', `no volume ${String(args.name)} in pool ${ctx.pool.name}`);
    const target = typeof args.target === 'string' ? path.resolve(args.target) : null;
    if (target && !publications(ctx, v.name).some((p) => p.target === target))
      throw new VolumeError('NOT_FOUND', `volume ${v.name} is not published at ${target}`);
    const usage = volumesOf(ctx.pool, ctx.fs).usageOf(v.name);
    let condition = await extentCondition(ctx, v);
    if (target && (await mountState(target)) !== 'live')
      condition = { abnormal: true, message: `the mount at ${target} is gone or dead (its FUSE server stopped)` };
    return { capacity: v.capacity, used: usage.bytes, inodes: usage.inodes, inodeLimit: v.inodeLimit, condition };
  },
};
