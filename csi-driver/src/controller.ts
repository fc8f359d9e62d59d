import { status } from '@grpc/grpc-js';
import { parsePolicy, formatPolicy } from '../../engine/redundancy/policy.js';
import { isTier, TIERS } from '../../engine/config/rules.js';
import { DEFAULT_VOLUME_BYTES, TOPOLOGY_KEY, topology, type PluginContext } from './context.js';
import { CsiError, invalid, notFound } from './errors.js';
import type { VolumeInfo } from '../../engine/control/protocol.js';
import type { CapacityRange, ControllerService, Topology, Volume } from './proto.js';
import { capabilityProblem, parseVolumeId, requireCapabilities, volumeId } from './validate.js';
import { volumeNameProblem } from '../../engine/volumes/names.js';
import { MAX_INODES } from '../../engine/fs/quota.js';

const KNOWN_PARAMETERS = new Set(['pool', 'redundancy', 'tier', 'inodes']);

/** StorageClass parameters checked before anything is looked up. Keys the CO adds (csi.storage.k8s.io/...) pass. */
function parameters(p: Record<string, string>): { pool?: string; redundancy?: string; tier?: string; inodes?: number } {
  for (const k of Object.keys(p)) {
    if (!KNOWN_PARAMETERS.has(k) && !k.startsWith('csi.storage.k8s.io/'))
      throw invalid(`unknown parameter '${k}' (known: ${[...KNOWN_PARAMETERS].join(', ')})`);
  }
  let redundancy: string | undefined;
  if (p.redundancy) {
    try {
      redundancy = formatPolicy(parsePolicy(p.redundancy));
    } catch (err) {
      throw invalid(`parameter redundancy: ${(err as Error).message}`);
    }
  }
  if (p.tier && !isTier(p.tier)) throw invalid(`parameter tier: '${p.tier}' is not one of ${TIERS.join(', ')}`);
  let inodes: number | undefined;
  if (p.inodes) {
    inodes = Number(p.inodes);
    if (!/^[0-9]+$/.test(p.inodes) || !Number.isSafeInteger(inodes) || inodes < 1 || inodes > MAX_INODES)
      throw invalid(`parameter inodes: '${p.inodes}' is not a whole number from 1 to ${MAX_INODES}`);
  }
  return { pool: p.pool || undefined, redundancy, tier: p.tier || undefined, inodes };
}

/** The capacity to give a volume: the required bytes (or a default), refused when the limit is smaller. */
export function capacityFor(range: CapacityRange | null | undefined, fallback = DEFAULT_VOLUME_BYTES): number {
  const required = range?.required_bytes ?? 0;
  const limit = range?.limit_bytes ?? 0;
  if (required < 0 || limit < 0) throw new CsiError(status.OUT_OF_RANGE, 'capacity_range bytes cannot be negative');
  if (limit > 0 && required > limit)
    throw new CsiError(status.OUT_OF_RANGE, `capacity_range: required_bytes ${required} exceeds limit_bytes ${limit}`);
  if (required > 0) return required;
  return limit > 0 ? Math.min(limit, fallback) : fallback;
}

/** Pools are node-local: a volume can only be made where the requisite topology allows this node. */
function reachable(ctx: PluginContext, req: { requisite: Topology[] } | null): boolean {
  const requisite = req?.requisite ?? [];
  if (requisite.length === 0) return true;
  return requisite.some((t) => t.segments[TOPOLOGY_KEY] === undefined || t.segments[TOPOLOGY_KEY] === ctx.nodeId);
}

function toCsiVolume(ctx: PluginContext, pool: string, v: VolumeInfo) {
  return {
    capacity_bytes: v.capacity,
    volume_id: volumeId({ pool, name: v.name }),
    volume_context: { pool, redundancy: v.policy, ...(v.tier ? { tier: v.tier } : {}) },
    accessible_topology: [topology(ctx)],
  } satisfies Volume;
}

export function controllerService(ctx: PluginContext): ControllerService {
  return {
    async CreateVolume(req) {
      if (!req.name) throw invalid('name is required');
      const problem = volumeNameProblem(req.name);
      if (problem) throw invalid(`name '${req.name.slice(0, 80)}' ${problem}`);
      const caps = requireCapabilities(req.volume_capabilities);
      for (const c of caps) {
        const p = capabilityProblem(c);
        if (p) throw invalid(p);
      }
      if (req.volume_content_source) throw invalid('volume_content_source: cloning and snapshots are not supported');
      const params = parameters(req.parameters ?? {});
      const capacity = capacityFor(req.capacity_range);
      if (!reachable(ctx, req.accessibility_requirements)) {
        throw new CsiError(status.RESOURCE_EXHAUSTED, `node ${ctx.nodeId} is not among the requisite topologies`);
      }
      const pool = ctx.engines.choose(params.pool);
      return ctx.locks.with(`${pool}:${req.name}`, async () => {
        const r = await ctx.engines.call(pool, 'volume-create', {
          name: req.name,
          capacity,
          policy: params.redundancy,
          tier: params.tier,
          inodes: params.inodes,
        });
        return { volume: toCsiVolume(ctx, pool, r.volume) };
      });
    },

    async DeleteVolume(req) {
      let ref;
      try {
        ref = parseVolumeId(req.volume_id, ctx.engines.names());
      } catch (err) {
        // A volume that does not exist is deleted already.
        if (err instanceof CsiError && err.code === status.NOT_FOUND) return {};
        throw err;
      }
      return ctx.locks.with(volumeId(ref), async () => {
        await ctx.engines.call(ref.pool, 'volume-delete', { name: ref.name });
        return {};
      });
    },

    async ValidateVolumeCapabilities(req) {
      const ref = parseVolumeId(req.volume_id, ctx.engines.names());
      const caps = requireCapabilities(req.volume_capabilities);
      const r = await ctx.engines.call(ref.pool, 'volume-get', { name: ref.name });
      if (!r.volume) throw notFound(`no volume ${req.volume_id}`);
      const problems = caps.map(capabilityProblem).filter((p): p is string => p !== null);
      if (problems.length) return { message: problems.join('; ') };
      return { confirmed: { volume_context: req.volume_context ?? {}, volume_capabilities: caps, parameters: req.parameters ?? {} } };
    },

    async ListVolumes(req) {
      if (req.max_entries < 0) throw invalid('max_entries cannot be negative');
      const all: ReturnType<typeof toCsiVolume>[] = [];
      for (const pool of [...ctx.engines.names()].sort()) {
        const r = await ctx.engines.call(pool, 'volume-list', {});
        all.push(...r.volumes.map((v) => toCsiVolume(ctx, pool, v)));
      }
      all.sort((a, b) => a.volume_id.localeCompare(b.volume_id));
      // The token is the id of the last entry returned: volumes created or deleted between pages move nothing.
      if (req.starting_token && !/^[^\0/]{1,300}:[^\0/]{1,200}$/.test(req.starting_token)) {
        throw new CsiError(
          status.ABORTED,
          `starting_token '${req.starting_token.slice(0, 80)}' was not issued by this plugin; list again from the start`,
        );
      }
      const rest = req.starting_token ? all.filter((v) => v.volume_id > req.starting_token) : all;
      const page = req.max_entries > 0 ? rest.slice(0, req.max_entries) : rest;
      return { entries: page.map((volume) => ({ volume })), next_token: page.length < rest.length ? page[page.length - 1].volume_id : '' };
    },

    async GetCapacity(req) {
      for (const c of req.volume_capabilities ?? []) if (capabilityProblem(c)) return { available_capacity: 0 };
      const seg = req.accessible_topology?.segments?.[TOPOLOGY_KEY];
      if (seg !== undefined && seg !== ctx.nodeId) return { available_capacity: 0 };
      const params = parameters(req.parameters ?? {});
      const pools = params.pool ? [ctx.engines.choose(params.pool)] : [...ctx.engines.names()];
      let best = 0;
      for (const pool of pools) {
        const r = await ctx.engines.call(pool, 'volume-capacity', { policy: params.redundancy, tier: params.tier });
        best = Math.max(best, r.available);
      }
      return { available_capacity: best, maximum_volume_size: { value: best } };
    },

    async ControllerGetCapabilities() {
      return { capabilities: (['CREATE_DELETE_VOLUME', 'LIST_VOLUMES', 'GET_CAPACITY'] as const).map((type) => ({ rpc: { type } })) };
    },
  };
}
