import { DEFAULT_TIER, isTier, TIERS, type Tier } from '../config/rules.js';
import { checkConfigFile, CREATION_FIELDS, isLiveField } from '../config/load.js';
import { volumeCommands } from './volume-commands.js';
import { diagnose } from '../report/diagnose.js';
import { fsck } from '../check/fsck.js';
import { removeDisk } from '../heal/drain.js';
import { probeDisks, reTrustDisk } from '../heal/probe.js';
import { rebuild } from '../heal/rebuild.js';
import { scrub, ScrubControl } from '../heal/scrub.js';
import { diskReports, poolStatus } from '../report/status.js';
import { isDiskHealth } from '../pool/disk-health.js';
import { domainLabel } from '../pool/failure-domain.js';
import { domainCount } from '../pool/capacity.js';
import { describeDomains } from '../pool/placement.js';
import { type DiskGuard, type Pool, PoolError } from '../pool/pool.js';
import { fragmentCount, formatPolicy, parsePolicy } from '../redundancy/policy.js';
import { UsageError } from '../util/errors.js';
import { poolMountAt, readMounts } from '../util/mountinfo.js';
import { volumesOf } from '../volumes/volumes.js';

import { jsonStrings, type CommandArgs } from './args.js';
import type { CommandContext, PoolCommand, PoolCommandTable } from './context.js';
import type { PoolCommandName } from './protocol.js';

export type { CommandArgs };

export type { CommandContext, PoolCommand, PoolCommandTable };

function str(args: CommandArgs, key: string): string {
  const v = args[key];
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing argument: ${key}`);
  return v;
}

const scrubControls = new WeakMap<Pool, ScrubControl>();

/**
 * Where a new disk may be: `diskRoots` (a JSON list, sent by the node agent from the chart's
 * diskPaths) is enforced without exception; otherwise the pool's security.disk_roots, which the CLI's
 * --allow-any-path lifts. `protectedDirs` (JSON) names more directories no disk may touch.
 */
function diskGuard(args: CommandArgs, mountpoint: string | null): DiskGuard {
  const absolute = (p: string) => p.startsWith('/');
  const agentRoots = jsonStrings(args, 'diskRoots', absolute, 'absolute paths');
  // The node agent's roots when it has some; otherwise the pool's own (an empty list from it changes nothing).
  const allowedRoots = agentRoots?.length ? agentRoots : undefined;
  return {
    allowedRoots,
    allowAnyPath: agentRoots === undefined && args.allowAnyPath === true,
    mountpoint,
    protectedDirs: jsonStrings(args, 'protectedDirs', absolute, 'absolute paths'),
    // A name that is given is checked, even an empty one; null or absent: found from the devices.
    failureDomain: typeof args.failureDomain === 'string' ? args.failureDomain : null,
    allowSharedDomain: args.allowSharedDomain === true,
  };
}

/** Commands that act on an open pool. The CLI runs them in-process or forwards them to the mount daemon. */
export const poolCommands: PoolCommandTable = {
  async ping({ pool, mountpoint, daemon }) {
    const mounted = mountpoint ? poolMountAt(await readMounts(), mountpoint, `dynamicfs:${pool.name}`) !== undefined : null;
    return { pool: pool.name, id: pool.id, mountpoint, daemon: daemon === true, pid: process.pid, mounted };
  },

  async status({ pool, fs, mountpoint, daemon }) {
    return poolStatus(pool, fs.ns, daemon ? { pid: process.pid, mountpoint } : null);
  },

  async 'list-disks'({ pool }) {
    await pool.disks.refreshSpace();
    return { disks: diskReports(pool) };
  },

  async 'add-disk'({ pool, mountpoint }, args) {
    const tier = (args.tier as string | undefined) ?? DEFAULT_TIER;
    if (!isTier(tier)) throw new UsageError(`--tier '${tier}' is not one of ${TIERS.join(', ')}`);
    const cap = typeof args.capacity === 'number' ? args.capacity : null;
    const { disk, recognised, warning } = await pool.addDisk(str(args, 'disk'), tier as Tier, cap, diskGuard(args, mountpoint));
    return {
      disk: { id: disk.id, path: disk.path, tier: disk.tier, capacity: cap, failureDomain: domainLabel(disk.domain), device: disk.device },
      recognised,
      warning,
    };
  },

  async 'set-failure-domain'({ pool }, args) {
    const name = str(args, 'domain');
    const { disk: d, warning } = await pool.setFailureDomain(str(args, 'disk'), name === 'auto' ? null : name);
    return { disk: d.id, failureDomain: domainLabel(d.domain), named: d.domainOverride !== null, device: d.device, warning };
  },

  async 'set-disk-health'({ pool, fs }, args) {
    const state = str(args, 'state');
    if (!isDiskHealth(state)) throw new UsageError(`state '${state}' is not one of healthy, degraded, suspect, draining, failed`);
    const d = pool.findDisk(str(args, 'disk'));
    const from = d.health;
    const reason = (args.reason as string | undefined) ?? `set by operator`;
    if (from === 'failed' && state !== 'failed') {
      const verification = await reTrustDisk(pool, fs.data.extents, d.id, reason);
      if (state !== 'healthy') pool.setDiskHealth(d.id, state, reason);
      return { disk: d.id, from, to: state, reason, verification };
    }
    pool.setDiskHealth(d.id, state, reason);
    return { disk: d.id, from, to: state, reason };
  },

  async tune({ pool }, args) {
    const num = (key: string, min: number, max: number): number | undefined => {
      const v = args[key];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
        throw new UsageError(`--${key} must be a whole number from ${min} to ${max}, got ${String(v)}`);
      return v;
    };
    // Validate everything before changing anything (applyConfig checks the whole result first).
    const fields = {
      auto_rebuild: typeof args['auto-rebuild'] === 'boolean' ? args['auto-rebuild'] : undefined,
      rebuild_concurrency: num('rebuild-concurrency', 1, 64),
      rebuild_bandwidth: typeof args['rebuild-bandwidth'] === 'number' ? args['rebuild-bandwidth'] : undefined,
      errors_suspect: num('errors-suspect', 1, 1_000_000),
      read_errors_failed: num('read-errors-failed', 1, 1_000_000),
      slow_io_ms: num('slow-io-ms', 1, 3_600_000),
      slow_ops_degraded: num('slow-ops-degraded', 1, 1_000_000),
    };
    const given = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
    if (Object.keys(given).length) pool.tuneReliability(given);
    return { autoRebuild: pool.autoRebuild, rebuild: pool.rebuildLimits, thresholds: pool.thresholds };
  },

  async config({ pool }) {
    return { file: pool.configFile, config: pool.config };
  },

  async 'config-apply'({ pool, daemon }, args) {
    const source = str(args, 'source');
    const file = checkConfigFile(JSON.parse(str(args, 'file')) as unknown, source);
    const changed = pool.applyConfig(file, source);
    // Layout fields apply to new pools only; this pool keeps what it was created with.
    const creationOnly = changed.filter((f) => CREATION_FIELDS.includes(f));
    // Without a daemon nothing runs: every change takes effect at the next mount.
    const live = daemon ? changed.filter(isLiveField) : [];
    return { changed, live, restart: changed.filter((f) => !live.includes(f) && !creationOnly.includes(f)), creationOnly };
  },

  /** In-process diagnosis of a pool no daemon serves (no live latency figures); a daemon answers with its own. */
  async diagnose({ pool, fs }) {
    return diagnose(pool, await poolStatus(pool, fs.ns), pool.config, { hits: fs.data.cache.hits, misses: fs.data.cache.misses });
  },

  async 'probe-disks'({ pool }) {
    return { probes: await probeDisks(pool) };
  },

  async 'set-policy'({ pool, fs }, args) {
    const dir = str(args, 'path');
    const text = str(args, 'policy');
    const policy = parsePolicy(text);
    const healthy = pool.disks.writable().length;
    if (fragmentCount(policy) > healthy) {
      throw new PoolError(
        `policy ${text} needs ${fragmentCount(policy)} healthy disks on distinct devices; pool ${pool.name} has ${healthy}. Add disks first.`,
      );
    }
    const domains = domainCount(pool.disks.writable());
    if (fragmentCount(policy) > domains && !pool.config.reliability.allow_shared_failure_domains) {
      throw new PoolError(
        `policy ${text} needs ${fragmentCount(policy)} failure domains; the healthy disks of pool ${pool.name} are in ${domains} (${describeDomains(pool.disks.writable())}). Add disks on other devices first.`,
      );
    }
    const top = dir.replace(/^\/+|\/+$/g, '');
    if (dir === '/') pool.setDefaultPolicy(policy);
    else if (fs.quotas.get(top)) volumesOf(pool, fs).setPolicy(top, formatPolicy(policy));
    else fs.ns.setPolicy(`/${top}`, formatPolicy(policy));
    return { path: dir, policy: formatPolicy(policy) };
  },

  async scrub({ pool, fs, progress }, args) {
    if (scrubControls.has(pool))
      throw new PoolError('a scrub is already running on this pool (pause or resume it with scrub --pause / --resume)');
    const control = new ScrubControl();
    scrubControls.set(pool, control);
    try {
      const bandwidthBytes = typeof args.bandwidth === 'number' ? args.bandwidth : undefined;
      return await pool.track(
        args.repair === true ? 'scrub --repair' : 'scrub',
        (onProgress) =>
          scrub(pool, fs.ns, fs.data.extents, {
            repair: args.repair === true,
            onProgress,
            bandwidthBytes,
            control,
            restart: args.restart === true,
          }),
        progress,
      );
    } finally {
      scrubControls.delete(pool);
    }
  },

  async 'scrub-control'({ pool }, args) {
    const control = scrubControls.get(pool);
    if (!control) throw new PoolError('no scrub is running on this pool');
    if (args.action === 'pause') control.pause();
    else control.resume();
    return { paused: control.paused };
  },

  async rebuild({ pool, fs, progress }, args) {
    const limits = pool.rebuildLimits;
    const concurrency = typeof args.concurrency === 'number' ? args.concurrency : limits.concurrency;
    const bandwidthBytes = typeof args.bandwidth === 'number' ? args.bandwidth : limits.bandwidthBytes;
    return pool.track('rebuild', (onProgress) => rebuild(pool, fs.data.extents, { onProgress, concurrency, bandwidthBytes }), progress);
  },

  async 'remove-disk'({ pool, fs, progress }, args) {
    const d = pool.findDisk(str(args, 'disk'));
    return pool.track(`drain ${d.id}`, (onProgress) => removeDisk(pool, fs.data.extents, d.id, { onProgress }), progress);
  },

  async 'replace-disk'({ pool, fs, progress, mountpoint }, args) {
    const old = pool.findDisk(str(args, 'old'));
    // The new disk may sit where the old one did (same domain), and keeps its named domain unless told.
    const guard = diskGuard(args, mountpoint);
    const { disk } = await pool.addDisk(str(args, 'new'), old.tier as Tier, old.cap, {
      ...guard,
      replacing: old.id,
      failureDomain: guard.failureDomain ?? old.domainOverride,
    });
    const drained = await pool.track(
      `drain ${old.id}`,
      (onProgress) => removeDisk(pool, fs.data.extents, old.id, { onProgress }),
      progress,
    );
    return { added: { id: disk.id, path: disk.path }, removed: drained };
  },

  ...volumeCommands,

  async fsck({ pool }, args) {
    const graceMs = typeof args.graceSeconds === 'number' ? args.graceSeconds * 1000 : undefined;
    return fsck(pool, { repair: args.repair === true, graceMs });
  },
};

/** Whether `name` is a pool command: a closed table (own names only: `constructor` or `__proto__` name nothing). */
export function isPoolCommand(name: string): name is PoolCommandName {
  return Object.hasOwn(poolCommands, name);
}
