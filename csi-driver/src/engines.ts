import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { POOL_IDENTITY } from '../../engine/pool/layout.js';
import path from 'node:path';
import { callControl } from '../../engine/control/client.js';
import type { ArgsOf, CommandName, ResultOf } from '../../engine/control/protocol.js';
import { readLockOwner } from '../../engine/pool/lock.js';
import { CsiError, invalid } from './errors.js';
import { status } from '@grpc/grpc-js';

/**
 * The engine daemons of this node's pools, reached over their control sockets. The CSI plugin keeps
 * no state of its own: restarting or upgrading it leaves every mount where it is.
 */
export class Engines {
  /** `pools`: name to directory; `poolsDir`: a directory whose subdirectories holding a pool.json are pools (the node agent's). */
  constructor(
    private readonly fixed: Map<string, string>,
    private readonly poolsDir: string | null = null,
  ) {}

  /** The pools now: fixed ones plus what the node agent has created since the last call. */
  private get pools(): Map<string, string> {
    if (!this.poolsDir) return this.fixed;
    const all = new Map(this.fixed);
    let entries: string[] = [];
    try {
      entries = readdirSync(this.poolsDir);
    } catch {
      /* not created yet */
    }
    for (const e of entries) if (existsSync(path.join(this.poolsDir, e, 'pool.json'))) all.set(e, path.join(this.poolsDir, e));
    return all;
  }

  names(): Set<string> {
    return new Set(this.pools.keys());
  }

  /** The pool a request names in its parameters, or the only pool when there is one. */
  choose(name: string | undefined): string {
    const pools = this.pools;
    if (name) {
      if (!pools.has(name)) throw invalid(`parameter pool: '${name}' is not a pool of this node (known: ${[...pools.keys()].join(', ')})`);
      return name;
    }
    if (pools.size === 1) return [...pools.keys()][0];
    throw invalid(`parameter 'pool' is required: this node has ${pools.size} pools (${[...pools.keys()].join(', ')})`);
  }

  /** The source its mount shows in mountinfo (`dynamicfs:<name>`, the name in its pool.json). */
  fsname(pool: string): string {
    const dir = this.pools.get(pool);
    let name = pool;
    try {
      if (dir) name = (JSON.parse(readFileSync(path.join(dir, POOL_IDENTITY), 'utf8')) as { name: string }).name;
    } catch {
      /* unreadable: the pool's key, which is its name for pools the node agent made */
    }
    return `dynamicfs:${name}`;
  }

  /** A command of the pool's daemon; fails with CsiError (no such pool, no daemon) or ControlError. */
  async call<C extends CommandName>(pool: string, command: C, args: ArgsOf<C>, timeoutMs = 60_000): Promise<ResultOf<C>> {
    const dir = this.pools.get(pool);
    if (!dir) throw invalid(`pool '${pool}' is not a pool of this node`);
    if (!readLockOwner(dir))
      throw new CsiError(status.UNAVAILABLE, `pool ${pool} (${dir}) is not served: its engine daemon is not running`);
    return callControl(dir, command, args, undefined, timeoutMs);
  }

  /** Ready when every pool's daemon answers and has the pool mounted. */
  async ready(): Promise<{ ready: boolean; reason: string }> {
    const pools = this.pools;
    for (const pool of pools.keys()) {
      try {
        const r = await this.call(pool, 'ping', {}, 5000);
        if (!r.mountpoint) return { ready: false, reason: `pool ${pool} is served without a mount` };
      } catch (err) {
        return { ready: false, reason: `pool ${pool}: ${(err as Error).message}` };
      }
    }
    return { ready: pools.size > 0, reason: pools.size ? 'all pools mounted' : 'no pools configured' };
  }
}
