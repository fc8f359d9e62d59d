import { DEFAULT_TIER } from '../../../engine/config/rules.js';
import { spawn } from 'node:child_process';
import { promises as fsp, openSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { PoolStatus as EngineStatus } from '../../../engine/report/status.js';
import { callControl } from '../../../engine/control/client.js';
import { logger } from '../../../engine/observability/logger.js';
import { withTrace } from '../../../engine/observability/trace.js';
import { readLockOwner, type LockOwner } from '../../../engine/pool/lock.js';
import { POOL_IDENTITY } from '../../../engine/pool/layout.js';
import { diskPathProblemsByName, resolveExisting } from '../../../engine/pool/disk-path.js';
import { poolMountAt, readMounts } from '../../../engine/util/mountinfo.js';
import { mkdirPrivate, PRIVATE_FILE } from '../../../engine/util/private-files.js';
import { formatBytes, parseSize } from '../../../engine/util/units.js';
import type { DynamicFSPool, PoolStatus } from '../api/pool.js';
import { configPath, poolPath } from '../controllers/pool-controller.js';
import { isStatus, type KubeClient } from '../kube/raw.js';

const log = logger('node-agent');
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../engine/cli/main.js');

export interface AgentOptions {
  nodeName: string;
  stateDir: string;
  reportMs?: number;
  /** Disks must be at or below one of these (the chart's diskPaths); empty: anywhere but the system's directories. */
  diskRoots?: string[];
}

const quantity = (v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  return parseSize(v.replace(/i$/, 'iB').replace(/^(\d+(?:\.\d+)?)([KMGTP])$/, '$1$2B'), 'quantity');
};

async function exists(p: string): Promise<boolean> {
  return fsp.stat(p).then(
    () => true,
    () => false,
  );
}

function run(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => resolve({ code: code ?? 1, out }));
  });
}

/**
 * The node side: for each DynamicFSPool of this node it creates or opens the pool, keeps its engine
 * daemon running with the resolved configuration, adds disks, drains approved removals, runs the
 * scrubs and rebuilds asked for, and reports health into the pool's status. Level-triggered: every
 * pass compares the resource with the pool and acts on the difference.
 */
export class NodeAgent {
  private readonly busy = new Map<string, Promise<void>>();
  /** Disks of each pool that the path rules refused in the last pass, with the reason. */
  private readonly refused = new Map<string, Map<string, string>>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly client: KubeClient,
    private readonly o: AgentOptions,
  ) {}

  private dirs(name: string) {
    return {
      pool: path.join(this.o.stateDir, 'pools', name),
      mnt: path.join(this.o.stateDir, 'mnt', name),
      config: path.join(this.o.stateDir, 'config', `${name}.yaml`),
    };
  }

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      await withTrace('node-agent pass', () => this.pass()).catch((err: unknown) => log.warn(`pass failed: ${(err as Error).message}`));
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.o.reportMs ?? 2000);
    };
    void tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  async pass(): Promise<void> {
    const list = await this.client.get<{ items: DynamicFSPool[] }>(poolPath());
    for (const pool of list.items.filter((p) => p.spec.nodeName === this.o.nodeName)) {
      try {
        await this.reconcile(pool);
      } catch (err) {
        log.warn(`pool ${pool.metadata.name}: ${(err as Error).message}`, { pool: pool.metadata.name });
      }
    }
  }

  private async reconcile(pool: DynamicFSPool): Promise<void> {
    const name = pool.metadata.name;
    const d = this.dirs(name);
    if (pool.metadata.deletionTimestamp) {
      await this.report(pool, d.pool);
      return;
    }
    // The configuration the pool's daemon runs with: the referenced DynamicFSConfig's spec.
    let configSpec: unknown = {};
    if (pool.spec.configRef) {
      try {
        configSpec = (await this.client.get<{ spec?: unknown }>(configPath(pool.spec.configRef))).spec ?? {};
      } catch (err) {
        if (!isStatus(err, 404)) throw err;
      }
    }
    await mkdirPrivate(path.dirname(d.config));
    const configText = stringify(configSpec ?? {});
    const oldConfig = await fsp.readFile(d.config, 'utf8').catch(() => null);
    if (!(await exists(path.join(d.pool, 'pool.json')))) {
      await fsp.writeFile(d.config, configText, { mode: PRIVATE_FILE });
      const args = ['init', d.pool, '--config', d.config, '--json'];
      if (pool.spec.redundancy) args.push('--redundancy', pool.spec.redundancy);
      const E = quantity(pool.spec.extentSize);
      if (E) args.push('--extent-size', String(E));
      const r = await run(args);
      if (r.code !== 0) throw new Error(`init failed: ${r.out.trim()}`);
      log.event('info', `pool ${name} created in ${d.pool}`, { pool: name });
    }
    let owner = readLockOwner(d.pool);
    if (owner && !(await this.mounted(d))) owner = await this.stopIfMountGone(name, d, owner);
    if (!owner) {
      await fsp.writeFile(d.config, configText, { mode: PRIVATE_FILE });
      // The mount's parent is private: other local users cannot walk into the pool (pods reach
      // their volumes through bind mounts, which need no path through here).
      await mkdirPrivate(path.dirname(d.mnt));
      await fsp.mkdir(d.mnt, { recursive: true });
      const out = openSync(path.join(d.pool, 'mount.log'), 'a', PRIVATE_FILE);
      const child = spawn(process.execPath, [CLI, 'mount', d.pool, d.mnt, '--foreground', '--config', d.config, '--log-format', 'json'], {
        detached: true,
        stdio: ['ignore', out, out],
      });
      child.unref();
      for (let i = 0; i < 100 && !readLockOwner(d.pool); i++) await new Promise((r) => setTimeout(r, 100));
      log.event('info', `engine daemon for pool ${name} started (pid ${child.pid})`, { pool: name });
    } else if (oldConfig !== configText) {
      await fsp.writeFile(d.config, configText, { mode: PRIVATE_FILE });
      await callControl(d.pool, 'config-apply', {
        file: JSON.stringify(configSpec ?? {}),
        source: `DynamicFSConfig ${pool.spec.configRef ?? '(none)'}`,
      });
      log.event('info', `configuration of pool ${name} updated from DynamicFSConfig ${pool.spec.configRef}`, { pool: name });
    }
    const engine = await callControl(d.pool, 'status', {}, undefined, 30_000);
    // Disks: add what spec lists and the pool lacks; drain what the operator approved. A path the
    // rules refuse is never created nor added: it shows as 'refused' in the status, with the reason.
    const refused = new Map<string, string>();
    const roots = this.o.diskRoots ?? [];
    for (const disk of pool.spec.disks) {
      const abs = path.resolve(disk.path);
      if (engine.disks.some((x) => x.path === abs)) continue;
      // Judged by name and by what a mkdir -p of it would really create (links on the way followed).
      const rules = {
        poolDir: d.pool,
        mountpoint: d.mnt,
        disks: engine.disks.map((x) => x.path),
        allowedRoots: roots,
        protectedDirs: [this.o.stateDir],
        mounts: await readMounts(),
      };
      const real = await resolveExisting(abs);
      const byName = [
        ...diskPathProblemsByName(abs, rules),
        ...(real === abs
          ? []
          : diskPathProblemsByName(real, rules).map((x) => ({ ...x, problem: `${abs} leads to ${real}: ${x.problem}` }))),
      ];
      if (byName.length) {
        refused.set(abs, byName.map((x) => x.problem).join('; '));
        continue;
      }
      const cap = quantity(disk.capacity);
      try {
        await fsp.mkdir(abs, { recursive: true });
        await callControl(d.pool, 'add-disk', {
          disk: abs,
          tier: disk.tier ?? DEFAULT_TIER,
          capacity: cap ?? null,
          diskRoots: JSON.stringify(roots),
          protectedDirs: JSON.stringify([this.o.stateDir]),
          failureDomain: disk.failureDomain ?? null,
        });
      } catch (err) {
        refused.set(abs, (err as Error).message);
        continue;
      }
      log.event('info', `disk ${disk.path} added to pool ${name}`, { pool: name, disk: disk.path });
    }
    for (const [p, why] of refused) log.warn(`pool ${name}: disk ${p} refused: ${why}`, { pool: name, disk: p });
    // A failure domain named (or unnamed) in the spec since the disk was added.
    for (const disk of pool.spec.disks) {
      const have = engine.disks.find((x) => x.path === path.resolve(disk.path));
      if (!have) continue;
      const wanted = disk.failureDomain ?? null;
      if (wanted === (have.domainNamed ? have.failureDomain : null)) continue;
      try {
        await callControl(d.pool, 'set-failure-domain', { disk: have.id, domain: wanted ?? 'auto' });
        log.event('info', `disk ${disk.path} of pool ${name}: failure domain ${wanted ?? 'found from its devices'}`, {
          pool: name,
          disk: disk.path,
        });
      } catch (err) {
        log.warn(`disk ${disk.path} of pool ${name}: failure domain not set: ${(err as Error).message}`, { pool: name, disk: disk.path });
      }
    }
    this.refused.set(name, refused);
    const st = pool.status ?? {};
    const ack = { ...(st.acknowledged ?? {}) };
    const background = (what: string, fn: () => Promise<void>) => {
      if (this.busy.has(name)) return;
      const p = fn()
        .catch((err: unknown) => log.warn(`${what} of pool ${name} failed: ${(err as Error).message}`, { pool: name }))
        .finally(() => this.busy.delete(name));
      this.busy.set(name, p);
    };
    for (const p of st.removalsApproved ?? []) {
      if (!engine.disks.some((x) => x.path === path.resolve(p))) continue;
      background(`drain of ${p}`, async () => {
        await callControl(d.pool, 'remove-disk', { disk: path.resolve(p) }, undefined, 3_600_000);
      });
    }
    const repair = pool.spec.scrub?.repair !== false;
    if (pool.spec.requests?.scrub && pool.spec.requests.scrub !== ack.scrub) {
      const token = pool.spec.requests.scrub;
      background('requested scrub', async () => {
        await callControl(d.pool, 'scrub', { repair }, undefined, 3_600_000);
        await this.ack(name, { scrub: token });
      });
    } else if (st.scrubDue && st.scrubDue !== ack.scheduledScrub) {
      const token = st.scrubDue;
      background('scheduled scrub', async () => {
        await callControl(d.pool, 'scrub', { repair }, undefined, 3_600_000);
        await this.ack(name, { scheduledScrub: token });
      });
    } else if (pool.spec.requests?.rebuild && pool.spec.requests.rebuild !== ack.rebuild) {
      const token = pool.spec.requests.rebuild;
      background('requested rebuild', async () => {
        await callControl(d.pool, 'rebuild', {}, undefined, 3_600_000);
        await this.ack(name, { rebuild: token });
      });
    } else if (st.rebuildWanted && st.rebuildWanted !== ack.rebuildWanted) {
      const token = st.rebuildWanted;
      background('rebuild', async () => {
        await callControl(d.pool, 'rebuild', {}, undefined, 3_600_000);
        await this.ack(name, { rebuildWanted: token });
      });
    }
    await this.report(pool, d.pool, engine);
  }

  /** Whether mountinfo shows the pool's mount at its mount point (never looked up: a dead or lost mount would hang or lie). */
  private async mounted(d: { pool: string; mnt: string }): Promise<boolean> {
    let name = path.basename(d.pool);
    try {
      name = (JSON.parse(await fsp.readFile(path.join(d.pool, POOL_IDENTITY), 'utf8')) as { name: string }).name;
    } catch {
      /* unreadable: the directory's name, which is the pool's for pools this agent made */
    }
    return poolMountAt(await readMounts(), d.mnt, `dynamicfs:${name}`) !== undefined;
  }

  /**
   * The pool's daemon runs but mountinfo shows no mount of it: it is still starting (it takes the lock
   * before it mounts, and opens its control socket after), or its mount was removed from outside
   * (umount, fusermount -u). A daemon that answers has mounted, and says whether its mount is still
   * there. One that lost it serves only what still holds the old mount (open files, bind mounts of
   * volumes; it would serve them until they go): it is asked to stop, flushing what is open, so that a
   * new daemon mounts the pool again and binds its published volumes anew. Returns the owner left.
   */
  private async stopIfMountGone(name: string, d: { pool: string; mnt: string }, owner: LockOwner): Promise<LockOwner | undefined> {
    const r = await callControl(d.pool, 'ping', {}, undefined, 10_000).catch(() => null);
    if (r?.mounted !== false) return readLockOwner(d.pool);
    log.event(
      'warn',
      `the mount of pool ${name} at ${d.mnt} is gone (removed from outside) while its daemon (pid ${owner.pid}) runs: stopping it to mount the pool again`,
      { pool: name, mountpoint: d.mnt, pid: owner.pid },
    );
    await callControl(d.pool, 'shutdown', {}, undefined, 10_000).catch(() => undefined);
    for (let i = 0; i < 600 && readLockOwner(d.pool); i++) await new Promise((res) => setTimeout(res, 100));
    const left = readLockOwner(d.pool);
    if (left) throw new Error(`the daemon of pool ${name} (pid ${left.pid}) lost its mount at ${d.mnt} and did not stop within 60s`);
    return undefined;
  }

  private async ack(name: string, fields: NonNullable<PoolStatus['acknowledged']>): Promise<void> {
    await this.client.mergePatch(`${poolPath(name)}/status`, { status: { acknowledged: fields } });
  }

  /** Writes what the node sees into the status (the operator derives the conditions from it). */
  private async report(pool: DynamicFSPool, poolDir: string, known?: EngineStatus): Promise<void> {
    const name = pool.metadata.name;
    let engine = known;
    if (!engine) {
      if (!readLockOwner(poolDir)) return;
      engine = await callControl(poolDir, 'status', {}, undefined, 30_000);
    }
    const volumes = (await callControl(poolDir, 'volume-list', {})).volumes.length;
    const wanted = new Set(pool.spec.disks.map((x) => path.resolve(x.path)));
    const disks = [
      ...engine.disks.map((x) => ({
        path: x.path,
        id: x.id,
        tier: x.tier,
        health: x.health,
        reason: x.healthReason || undefined,
        capacity: x.capacity,
        used: x.used,
        errors: x.errors,
        lastProbe: x.lastProbe ? JSON.stringify(x.lastProbe) : undefined,
        identity: `${engine.pool.id}/${x.id}`,
        failureDomain: x.failureDomain,
        device: x.device,
      })),
      ...[...wanted]
        .filter((p) => !engine.disks.some((x) => x.path === p))
        .map((p) => {
          const why = this.refused.get(name)?.get(p);
          return why ? { path: p, health: 'refused', reason: why } : { path: p, health: 'pending' };
        }),
    ];
    const healthy = engine.disks.filter((x) => x.health === 'healthy').length;
    const op = engine.operation;
    const status: PoolStatus = {
      health: engine.health,
      reasons: engine.reasons,
      poolId: engine.pool.id,
      disks,
      diskCount: `${healthy}/${engine.disks.length}`,
      extents: { healthy: engine.extents.healthy, degraded: engine.extents.degraded, unrecoverable: engine.extents.unrecoverable },
      bytesAtRisk: engine.bytesAtRisk,
      failureDomains: {
        count: engine.failureDomains.count,
        short: engine.failureDomains.short.map((x) => x.policy),
        sharedExtents: engine.failureDomains.sharedExtents,
        allowShared: engine.failureDomains.allowShared,
      },
      capacity: {
        raw: engine.capacity.raw,
        used: engine.capacity.used,
        free: engine.capacity.free,
        usable: engine.capacity.usableFree,
        rawText: formatBytes(engine.capacity.raw),
        usedText: formatBytes(engine.capacity.used),
      },
      lastScrub: engine.lastScrub
        ? {
            time: engine.lastScrub.finishedAt,
            result: engine.lastScrub.extents.unrecoverable ? 'unrecoverable' : engine.lastScrub.issues ? 'issues' : 'clean',
            issues: engine.lastScrub.issues,
            repaired: engine.lastScrub.repaired,
            unrecoverable: engine.lastScrub.extents.unrecoverable,
          }
        : undefined,
      operation: op
        ? {
            kind: op.kind,
            startedAt: op.startedAt,
            progress: op.extentsTotal ? op.extentsDone / op.extentsTotal : 0,
            extentsDone: op.extentsDone,
            extentsTotal: op.extentsTotal,
          }
        : undefined,
      nodeReportTime: new Date().toISOString(),
      volumes,
    };
    // A merge patch with null removes a field: an operation that ended disappears from the status.
    await this.client.mergePatch(`${poolPath(name)}/status`, {
      status: { ...status, operation: status.operation ?? null, lastScrub: status.lastScrub ?? null },
    });
  }
}
