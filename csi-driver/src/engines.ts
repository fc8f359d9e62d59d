import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { POOL_IDENTITY } from '../../engine/pool/layout.js';
import path from 'node:path';
import { callControl } from '../../engine/control/client.js';
import type { ArgsOf, CommandName, ResultOf } from '../../engine/control/protocol.js';
import { readLockOwner } from '../../engine/pool/lock.js';
import { CsiError, invalid } from './errors.js';
import { status } from '@grpc/grpc-js';
import { logger } from '../../engine/observability/logger.js';

const log = logger('csi');
/** See Engines.waitMounted: the node agent notices a missing mount within its pass (2 s) and restarts the daemon. */
export const DEFAULT_MOUNT_WAIT_MS = 30_000;

/**
 * The engine daemons of this node's pools, reached over their control sockets. The CSI plugin keeps
 * no state of its own: restarting or upgrading it leaves every mount where it is.
 */
export class Engines {
  /** `pools`: name to directory; `poolsDir`: a directory whose subdirectories holding a pool.json are pools (the node agent's). */
  constructor(
    private readonly fixed: Map<string, string>,
    private readonly poolsDir: string | null = null,
    /** How long a publish waits for a pool's mount that is missing (its daemon starting, or being restarted by the node agent). */
    private readonly mountWaitMs = DEFAULT_MOUNT_WAIT_MS,
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

  /** Why the pool's mount cannot be used now (no daemon, served without a mount, its mount gone), or null when it can. */
  async mountProblem(pool: string): Promise<string | null> {
    try {
      const r = await this.call(pool, 'ping', {}, 5000);
      if (!r.mountpoint) return `pool ${pool} is served without a mount`;
      // The daemon's own mountinfo (a daemon before this field sent none: taken as mounted).
      if (r.mounted === false)
        return `the mount of pool ${pool} at ${r.mountpoint} is gone (removed from outside); its daemon (pid ${r.pid}) is to be restarted`;
      return null;
    } catch (err) {
      return `pool ${pool}: ${(err as Error).message}`;
    }
  }

  /**
   * Waits until the pool's daemon serves its mount: a publish that arrives while the mount is missing
   * (removed from outside, the daemon ending or being started again by the node agent) goes on once it
   * is back, and fails UNAVAILABLE (kubelet retries) if it is not back within the wait.
   */
  async waitMounted(pool: string): Promise<void> {
    const deadline = Date.now() + this.mountWaitMs;
    let problem = await this.mountProblem(pool);
    if (problem === null) return;
    log.warn(`waiting up to ${this.mountWaitMs / 1000}s for the mount of pool ${pool}: ${problem}`, { pool });
    while (problem !== null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      problem = await this.mountProblem(pool);
    }
    if (problem !== null) throw new CsiError(status.UNAVAILABLE, `${problem} (waited ${this.mountWaitMs / 1000}s)`);
    log.info(`the mount of pool ${pool} is back`, { pool });
  }

  /** Ready when every pool's daemon answers and has the pool mounted. */
  async ready(): Promise<{ ready: boolean; reason: string }> {
    const pools = this.pools;
    for (const pool of pools.keys()) {
      const problem = await this.mountProblem(pool);
      if (problem) return { ready: false, reason: problem };
    }
    return { ready: pools.size > 0, reason: pools.size ? 'all pools mounted' : 'no pools configured' };
  }
}
