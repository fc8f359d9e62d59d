import { createHash } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { logger } from '../../engine/observability/logger.js';
import { formatPolicy, parsePolicy } from '../../engine/redundancy/policy.js';
import { mountFlagProblem, unbindTarget } from '../../engine/volumes/publish.js';
import { capacityFor } from './controller.js';
import { topology, type PluginContext } from './context.js';
import { ControlError, type ResultOf } from '../../engine/control/protocol.js';
import { CsiError, invalid, notFound } from './errors.js';
import type { NodeService } from './proto.js';
import { capabilityProblem, checkPath, parseVolumeId, symlinkOnTheWay, volumeId, type VolumeRef } from './validate.js';

const EPHEMERAL_KEY = 'csi.storage.k8s.io/ephemeral';
/** Attributes an inline volume may carry besides the ones kubelet adds (csi.storage.k8s.io/...). */
const EPHEMERAL_ATTRIBUTES = new Set(['size', 'pool', 'redundancy', 'tier']);
const log = logger('csi');

/** Inline (ephemeral) volumes: the kubelet picks the id; the volume is named from it, in the pool the attributes name. */
function ephemeralRef(ctx: PluginContext, id: string, attrs: Record<string, string>): VolumeRef {
  if (!id || id.includes('\0') || id.length > 512) throw invalid('volume_id is required and must be a plain string');
  const name = `ephemeral-${createHash('sha256').update(id).digest('hex').slice(0, 40)}`;
  return { pool: ctx.engines.choose(attrs.pool), name };
}

interface EphemeralSpec {
  capacity: number;
  policy?: string;
  tier?: string;
}

/**
 * What an inline volume may be, from the attributes of a pod's spec: refused unless the cluster's
 * operator enabled inline volumes, and then held to the size, pools, policies and tiers allowed.
 */
function ephemeralSpec(ctx: PluginContext, attrs: Record<string, string>): EphemeralSpec {
  const e = ctx.ephemeral;
  if (!e.enabled) throw invalid('inline ephemeral volumes are disabled on this node (chart value csi.ephemeral.enabled)');
  for (const k of Object.keys(attrs)) {
    if (!EPHEMERAL_ATTRIBUTES.has(k) && !k.startsWith('csi.storage.k8s.io/'))
      throw invalid(`volume attribute '${k}' is not known for inline volumes (known: ${[...EPHEMERAL_ATTRIBUTES].join(', ')})`);
  }
  const capacity = attrs.size ? Number(attrs.size) : e.defaultBytes;
  if (!/^[0-9]+$/.test(attrs.size ?? '0') || !Number.isSafeInteger(capacity) || capacity <= 0)
    throw invalid(`volume attribute size '${attrs.size}' is not a byte count`);
  if (capacity > e.maxBytes)
    throw invalid(
      `volume attribute size ${capacity} is more than inline volumes may have on this node (${e.maxBytes} bytes, chart value csi.ephemeral.maxSize)`,
    );
  let policy: string | undefined;
  if (attrs.redundancy) {
    try {
      policy = formatPolicy(parsePolicy(attrs.redundancy));
    } catch (err) {
      throw invalid(`volume attribute redundancy: ${(err as Error).message}`);
    }
    if (!e.redundancy.includes(policy))
      throw invalid(
        `inline volumes may not ask for redundancy ${policy} (allowed: ${e.redundancy.join(', ') || "none: the pool's default applies"})`,
      );
  }
  if (attrs.tier && !e.tiers.includes(attrs.tier))
    throw invalid(`inline volumes may not ask for tier '${attrs.tier}' (allowed: ${e.tiers.join(', ') || 'none'})`);
  return { capacity, policy, tier: attrs.tier || undefined };
}

/** A volume_path names a published target: one that cannot be (relative, outside our roots) is simply not found. */
function publishedPath(ctx: PluginContext, p: string): string {
  try {
    return checkPath(p, 'volume_path', ctx.targetRoots).path;
  } catch (err) {
    if (p.includes('\0') || p.length > 4096) throw err;
    throw notFound(`volume_path '${p.slice(0, 200)}' is not a path this plugin published`);
  }
}

export function nodeService(ctx: PluginContext): NodeService {
  return {
    async NodePublishVolume(req) {
      if (!req.volume_id) throw invalid('volume_id is required');
      if (!req.target_path) throw invalid('target_path is required');
      if (!req.volume_capability) throw invalid('volume_capability is required');
      const problem = capabilityProblem(req.volume_capability);
      if (problem) throw invalid(problem);
      const { path: target, root } = checkPath(req.target_path, 'target_path', ctx.targetRoots);
      const attrs = req.volume_context ?? {};
      const ephemeral = attrs[EPHEMERAL_KEY] === 'true';
      const inline = ephemeral ? ephemeralSpec(ctx, attrs) : null;
      const ref = ephemeral ? ephemeralRef(ctx, req.volume_id, attrs) : parseVolumeId(req.volume_id, ctx.engines.names());
      // Named or chosen (the node's only pool), the pool must be one inline volumes may use.
      if (ephemeral && ctx.ephemeral.pools.length && !ctx.ephemeral.pools.includes(ref.pool)) {
        throw invalid(`inline volumes may not use pool '${ref.pool}' (allowed: ${ctx.ephemeral.pools.join(', ')})`);
      }
      const flags = req.volume_capability.mount?.mount_flags ?? [];
      const flagProblem = mountFlagProblem(flags, ctx.allowedMountOptions);
      if (flagProblem) throw invalid(`${flagProblem} (chart value csi.allowedMountOptions)`);
      const link = await symlinkOnTheWay(target, root);
      if (link)
        throw invalid(`target_path '${target}' passes through the symbolic link ${link}; targets are resolved without following links`);
      return ctx.locks.with(volumeId(ref), async () => {
        // The pool's mount must be there to bind from: one removed from outside comes back with a new
        // daemon (the node agent starts it), and the publish goes on then.
        await ctx.engines.waitMounted(ref.pool);
        if (inline) {
          await ctx.engines.call(ref.pool, 'volume-create', {
            name: ref.name,
            capacity: inline.capacity,
            policy: inline.policy,
            tier: inline.tier,
            ephemeral: true,
            context: JSON.stringify({ id: req.volume_id }),
          });
        }
        await ctx.engines.call(ref.pool, 'volume-publish', {
          name: ref.name,
          target,
          root,
          readonly: req.readonly === true,
          flags: JSON.stringify(flags),
        });
        return {};
      });
    },

    async NodeUnpublishVolume(req) {
      if (!req.volume_id) throw invalid('volume_id is required');
      if (!req.target_path) throw invalid('target_path is required');
      const target = checkPath(req.target_path, 'target_path', ctx.targetRoots).path;
      let ref: VolumeRef | null = null;
      try {
        ref = parseVolumeId(req.volume_id, ctx.engines.names());
      } catch (err) {
        if (!(err instanceof CsiError && err.code === status.NOT_FOUND)) throw err;
      }
      const pools = ref ? [ref.pool] : [...ctx.engines.names()];
      return ctx.locks.with(ref ? volumeId(ref) : req.volume_id, async () => {
        // The daemon that recorded the publication unmounts it (idempotent: fine when nothing is there).
        for (const pool of pools) {
          let r: ResultOf<'volume-unpublish'>;
          try {
            r = await ctx.engines.call(pool, 'volume-unpublish', { target });
          } catch (err) {
            // No daemon serves the pool (none runs, or its socket is gone); a slow one is not skipped.
            const down = (err instanceof CsiError && err.code === status.UNAVAILABLE) || (err instanceof ControlError && err.unreachable);
            if (!down) throw err;
            // The engine daemon is down, so a mount of ours there is dead: unmount it here, but only if
            // mountinfo shows a bind of this pool's volume. The daemon forgets the publication when it
            // finds the target gone at its next start.
            const outcome = await unbindTarget(target, { fsname: ctx.engines.fsname(pool), volume: ref?.name });
            if (outcome === 'foreign')
              log.warn(`NodeUnpublishVolume: ${target} holds a mount this driver did not make; left alone`, { pool, target });
            continue;
          }
          // An engine of an older version sends no `recorded`: it did unmount what it found there.
          if (r.recorded === false) {
            log.info(`NodeUnpublishVolume: pool ${pool} never published ${target}; nothing touched`, { pool, target });
            continue;
          }
          if (r.volume?.startsWith('ephemeral-')) {
            const v = await ctx.engines.call(pool, 'volume-get', { name: r.volume });
            if (v.volume?.ephemeral) await ctx.engines.call(pool, 'volume-delete', { name: r.volume });
          }
        }
        return {};
      });
    },

    async NodeGetVolumeStats(req) {
      if (!req.volume_id) throw invalid('volume_id is required');
      if (!req.volume_path) throw invalid('volume_path is required');
      const ref = parseVolumeId(req.volume_id, ctx.engines.names());
      const target = publishedPath(ctx, req.volume_path);
      const s = await ctx.engines.call(ref.pool, 'volume-stats', { name: ref.name, target });
      return {
        usage: [
          { unit: 'BYTES', total: s.capacity, used: s.used, available: Math.max(0, s.capacity - s.used) },
          {
            unit: 'INODES',
            total: s.inodeLimit ?? s.inodes + 1_000_000,
            used: s.inodes,
            available: Math.max(0, (s.inodeLimit ?? s.inodes + 1_000_000) - s.inodes),
          },
        ],
        volume_condition: s.condition,
      };
    },

    async NodeExpandVolume(req) {
      if (!req.volume_id) throw invalid('volume_id is required');
      if (!req.volume_path) throw invalid('volume_path is required');
      const ref = parseVolumeId(req.volume_id, ctx.engines.names());
      publishedPath(ctx, req.volume_path);
      const current = await ctx.engines.call(ref.pool, 'volume-get', { name: ref.name });
      if (!current.volume) throw notFound(`no volume ${req.volume_id}`);
      const capacity = capacityFor(req.capacity_range, current.volume.capacity);
      return ctx.locks.with(volumeId(ref), async () => {
        const r = await ctx.engines.call(ref.pool, 'volume-expand', { name: ref.name, capacity });
        return { capacity_bytes: r.volume.capacity };
      });
    },

    async NodeGetCapabilities() {
      return { capabilities: (['GET_VOLUME_STATS', 'EXPAND_VOLUME', 'VOLUME_CONDITION'] as const).map((type) => ({ rpc: { type } })) };
    },

    async NodeGetInfo() {
      return { node_id: ctx.nodeId, max_volumes_per_node: 0, accessible_topology: topology(ctx) };
    },
  };
}
