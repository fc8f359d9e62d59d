import { status } from '@grpc/grpc-js';
import { CsiError } from './errors.js';
import type { Engines } from './engines.js';

export const DRIVER_NAME = 'csi.dynamicfs.io';
export const TOPOLOGY_KEY = 'topology.dynamicfs.io/node';
/** Size of a volume created without a capacity (dynamic volumes) or an inline volume without `size`. */
export const DEFAULT_VOLUME_BYTES = 1024 ** 3;
export const DEFAULT_EPHEMERAL_BYTES = 100 * 1024 ** 2;

export interface PluginContext {
  nodeId: string;
  engines: Engines;
  /** Directories target paths must lie in (the kubelet's, by default). */
  targetRoots: string[];
  version: string;
  locks: VolumeLocks;
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
