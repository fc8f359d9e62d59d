import type { CommandArgs } from '../../engine/control/commands.js';
import { callControl } from '../../engine/control/socket.js';
import { readLockOwner } from '../../engine/pool/lock.js';
import { CsiError, invalid } from './errors.js';
import { status } from '@grpc/grpc-js';

/**
 * The engine daemons of this node's pools, reached over their control sockets. The CSI plugin keeps
 * no state of its own: restarting or upgrading it leaves every mount where it is.
 */
export class Engines {
  constructor(private readonly pools: Map<string, string>) {}

  names(): Set<string> {
    return new Set(this.pools.keys());
  }

  /** The pool a request names in its parameters, or the only pool when there is one. */
  choose(name: string | undefined): string {
    if (name) {
      if (!this.pools.has(name)) throw invalid(`parameter pool: '${name}' is not a pool of this node (known: ${[...this.pools.keys()].join(', ')})`);
      return name;
    }
    if (this.pools.size === 1) return [...this.pools.keys()][0];
    throw invalid(`parameter 'pool' is required: this node has ${this.pools.size} pools (${[...this.pools.keys()].join(', ')})`);
  }

  async call<T>(pool: string, command: string, args: CommandArgs = {}, timeoutMs = 60_000): Promise<T> {
    const dir = this.pools.get(pool);
    if (!dir) throw invalid(`pool '${pool}' is not a pool of this node`);
    if (!readLockOwner(dir)) throw new CsiError(status.UNAVAILABLE, `pool ${pool} (${dir}) is not served: its engine daemon is not running`);
    return (await callControl(dir, command, args, undefined, timeoutMs)) as T;
  }

  /** Ready when every pool's daemon answers and has the pool mounted. */
  async ready(): Promise<{ ready: boolean; reason: string }> {
    for (const pool of this.pools.keys()) {
      try {
        const r = await this.call<{ mountpoint: string | null }>(pool, 'ping', {}, 5000);
        if (!r.mountpoint) return { ready: false, reason: `pool ${pool} is served without a mount` };
      } catch (err) {
        return { ready: false, reason: `pool ${pool}: ${(err as Error).message}` };
      }
    }
    return { ready: this.pools.size > 0, reason: this.pools.size ? 'all pools mounted' : 'no pools configured' };
  }
}
