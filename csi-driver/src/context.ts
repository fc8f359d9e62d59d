import { status } from '@grpc/grpc-js';
import { CsiError } from './errors.js';
import type { Engines } from './engines.js';

export const DRIVER_NAME = 'csi.dynamicfs.io';
export const TOPOLOGY_KEY = 'topology.dynamicfs.io/node';
/** Size of a volume created without a capacity (dynamic volumes) or an inline volume without `size`. */
export const DEFAULT_VOLUME_BYTES = 1024 ** 3;

/**
 * Inline (ephemeral) volumes: whoever may create a pod chooses their attributes, so they are off
 * unless the cluster's operator turns them on (chart values csi.ephemeral), and then capped.
 */
export interface EphemeralPolicy {
  enabled: boolean;
  /** Largest `size` a pod may ask for. */
  maxBytes: number;
  /** Size of an inline volume that names none. */
  defaultBytes: number;
  /** Policies a pod may ask for; empty: none, the pool's default applies. */
  redundancy: string[];
  /** Pools a pod may name; empty: any pool of the node. */
  pools: string[];
  /** Tiers a pod may name; empty: none. */
  tiers: string[];
}

export const EPHEMERAL_OFF: EphemeralPolicy = { enabled: false, maxBytes: 0, defaultBytes: 0, redundancy: [], pools: [], tiers: [] };

export interface PluginContext {
  nodeId: string;
  engines: Engines;
  /** Directories target paths must lie strictly inside (the kubelet's, by default). */
  targetRoots: string[];
  version: string;
  locks: VolumeLocks;
  ephemeral: EphemeralPolicy;
  /** Mount flags beyond nosuid,nodev that publications may carry (suid, dev): the cluster's operator's choice. */
  allowedMountOptions: ReadonlySet<string>;
}

/** One operation per volume at a time: a second concurrent call gets ABORTED, as the spec asks. */
export class VolumeLocks {
  private readonly held = new Set<string>();

  async with<T>(key: string, fn: () => Promise<T>): Promise<T> {
    if (this.held.has(key)) throw new CsiError(status.ABORTED, `an operation on ${key} is already in progress`);
    this.held.add(key);
    try {
      return await fn();
    } finally {
      this.held.delete(key);
    }
  }
}

export function topology(ctx: PluginContext): { segments: Record<string, string> } {
  return { segments: { [TOPOLOGY_KEY]: ctx.nodeId } };
}
