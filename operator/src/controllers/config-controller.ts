import { checkConfigFile, resolveConfig } from '../../../engine/config/load.js';
import type { ConfigFile } from '../../../engine/config/schema.js';
import type { Condition, DynamicFSPool } from '../api/pool.js';
import { setCondition } from '../kube/conditions.js';
import { isStatus, type KubeClient } from '../kube/raw.js';
import { configPath } from './pool-controller.js';

interface DynamicFSConfig {
  metadata: { name: string; generation?: number };
  spec?: unknown;
  status?: { conditions?: Condition[] };
}

/** Resolves each DynamicFSConfig with the engine's own loader: Valid condition, and which pools use it. */
export class ConfigController {
  constructor(
    private readonly client: KubeClient,
    private readonly pools: () => readonly DynamicFSPool[],
  ) {}

  async reconcile(name: string): Promise<number | null> {
    let dfc: DynamicFSConfig;
    try {
      dfc = await this.client.get<DynamicFSConfig>(configPath(name));
    } catch (err) {
      if (isStatus(err, 404)) return null;
      throw err;
    }
    const gen = dfc.metadata.generation ?? 0;
    let valid: Omit<Condition, 'lastTransitionTime'>;
    try {
      const c = resolveConfig(checkConfigFile(dfc.spec ?? {}, `spec`) as ConfigFile, { source: 'spec' });
      valid = {
        type: 'Valid',
        status: 'True',
        reason: 'Resolved',
        message: `preset ${(dfc.spec as { preset?: string } | undefined)?.preset ?? 'production'}; extent ${c.storage.extent_size} bytes, ${c.storage.redundancy}`,
        observedGeneration: gen,
      };
    } catch (err) {
      valid = { type: 'Valid', status: 'False', reason: 'Invalid', message: (err as Error).message, observedGeneration: gen };
    }
    const users = this.pools()
      .filter((p) => p.spec.configRef === name)
      .map((p) => p.metadata.name)
      .sort();
    await this.client.mergePatch(`${configPath(name)}/status`, {
      status: { observedGeneration: gen, conditions: setCondition(dfc.status?.conditions, valid), pools: users, poolCount: users.length },
    });
    return 30_000;
  }
}
