import { CronExpressionParser } from 'cron-parser';
import { resolveConfig, checkConfigFile } from '../../../engine/config/load.js';
import type { ConfigFile } from '../../../engine/config/schema.js';
import { logger } from '../../../engine/observability/logger.js';
import { CONFIG_PLURAL, GROUP, POOL_PLURAL, VERSION, type Condition, type DynamicFSPool, type PoolStatus } from '../api/pool.js';
import { conditionOf, setCondition } from '../kube/conditions.js';
import type { EventRecorder } from '../kube/events.js';
import { isStatus, type KubeClient } from '../kube/raw.js';

export const FINALIZER = 'dynamicfs.io/pool-protection';
const log = logger('pool-controller');
export const poolPath = (name = '') => `/apis/${GROUP}/${VERSION}/${POOL_PLURAL}${name ? `/${name}` : ''}`;
export const configPath = (name = '') => `/apis/${GROUP}/${VERSION}/${CONFIG_PLURAL}${name ? `/${name}` : ''}`;

interface Seen {
  diskHealth: Map<string, string>;
  operation: string | null;
  lastScrub: string | null;
  scrubAck: string;
  rebuildAck: string;
  scrubAsk: string;
  rebuildAsk: string;
}

/**
 * Decides for each DynamicFSPool: finalizer and deletion, configuration validity, when a scheduled
 * scrub is due, when a rebuild is wanted, which disk removals are confirmed; derives the conditions
 * from what the node reported; emits Events on transitions. Returns when to look again.
 */
export class PoolController {
  private readonly seen = new Map<string, Seen>();

  constructor(
    private readonly client: KubeClient,
    private readonly events: EventRecorder,
    private readonly nodeStaleMs = 30_000,
  ) {}

  async reconcile(name: string): Promise<number | null> {
    let pool: DynamicFSPool;
    try {
      pool = await this.client.get<DynamicFSPool>(poolPath(name));
    } catch (err) {
      if (isStatus(err, 404)) {
        this.seen.delete(name);
        return null;
      }
      throw err;
    }
    const finalizers = pool.metadata.finalizers ?? [];
    if (pool.metadata.deletionTimestamp) return this.finalize(pool, finalizers);
    if (!finalizers.includes(FINALIZER)) {
      await this.client.mergePatch(poolPath(name), {
        metadata: { finalizers: [...finalizers, FINALIZER], resourceVersion: pool.metadata.resourceVersion },
      });
      return 0; // the update comes back through the informer
    }
    const now = new Date();
    const gen = pool.metadata.generation ?? 0;
    const st: PoolStatus = pool.status ?? {};
    let conditions = st.conditions;
    const set = (type: string, status: Condition['status'], reason: string, message: string) => {
      conditions = setCondition(conditions, { type, status, reason, message, observedGeneration: gen }, now);
    };

    // Configuration: the referenced DynamicFSConfig must exist and resolve.
    let config: ReturnType<typeof resolveConfig> | null = null;
    if (pool.spec.configRef) {
      try {
        const dfc = await this.client.get<{ spec?: unknown }>(configPath(pool.spec.configRef));
        config = resolveConfig(checkConfigFile(dfc.spec ?? {}, `DynamicFSConfig ${pool.spec.configRef}`) as ConfigFile, {
          source: `DynamicFSConfig ${pool.spec.configRef}`,
        });
        set('ConfigValid', 'True', 'ConfigResolved', `DynamicFSConfig ${pool.spec.configRef} resolves`);
      } catch (err) {
        if (isStatus(err, 404)) set('ConfigValid', 'False', 'ConfigNotFound', `DynamicFSConfig ${pool.spec.configRef} does not exist`);
        else set('ConfigValid', 'False', 'ConfigInvalid', (err as Error).message);
      }
    } else {
      config = resolveConfig({});
      set('ConfigValid', 'True', 'DefaultConfig', 'no configRef: the production preset applies');
    }

    const reportAge = st.nodeReportTime ? now.getTime() - Date.parse(st.nodeReportTime) : Infinity;
    const fresh = reportAge < this.nodeStaleMs;
    const patch: PoolStatus = {};
    let requeueMs = 10_000;

    // Scheduled scrubs: due at the schedule's next time after the last scrub (or creation).
    const schedule = pool.spec.scrub?.schedule;
    if (schedule) {
      try {
        const from = new Date(st.lastScrub?.time ?? pool.metadata.creationTimestamp ?? now.toISOString());
        const next = CronExpressionParser.parse(schedule.startsWith('@') ? schedule : schedule, { currentDate: from })
          .next()
          .toDate();
        patch.nextScrub = next.toISOString();
        const pending = st.scrubDue && st.scrubDue !== st.acknowledged?.scheduledScrub;
        if (next.getTime() <= now.getTime() && !pending && fresh) patch.scrubDue = next.toISOString();
        else if (next.getTime() > now.getTime()) requeueMs = Math.min(requeueMs, next.getTime() - now.getTime() + 50);
      } catch (err) {
        set('ConfigValid', 'False', 'BadSchedule', `spec.scrub.schedule '${schedule}': ${(err as Error).message}`);
      }
    }

    // Rebuild decision: a failed disk with auto-rebuild on.
    const failed = (st.disks ?? [])
      .filter((d) => d.health === 'failed')
      .map((d) => d.id ?? d.path)
      .sort();
    if (failed.length && config?.reliability.auto_rebuild && fresh) {
      const token = `failed:${failed.join(',')}`;
      if (st.rebuildWanted !== token) patch.rebuildWanted = token;
    }

    // Disk removals: a disk gone from spec.disks is drained only when confirmed.
    const wanted = new Set(pool.spec.disks.map((d) => d.path));
    const present = (st.disks ?? []).filter((d) => !['pending', 'removed', 'refused'].includes(d.health)).map((d) => d.path);
    // Disks the node would not add (outside its disk roots, inside a pool or a system directory).
    const refused = (st.disks ?? []).filter((d) => d.health === 'refused');
    const leaving = present.filter((p) => !wanted.has(p));
    const confirmed = leaving.filter((p) => pool.spec.confirmDiskRemoval?.includes(p));
    patch.removalsApproved = confirmed;
    const unconfirmed = leaving.filter((p) => !confirmed.includes(p));

    // Conditions from the node's report.
    const op = st.operation;
    if (!fresh) {
      const why = st.nodeReportTime
        ? `the node side last reported ${Math.round(reportAge / 1000)} s ago`
        : 'the node side has not reported yet';
      set('Ready', 'Unknown', 'NodeNotReporting', `${why} (node ${pool.spec.nodeName})`);
      set('Degraded', 'Unknown', 'NodeNotReporting', why);
    } else {
      const reasons = st.reasons ?? [];
      if (st.health === 'critical') set('Ready', 'False', 'PoolCritical', reasons.join('; ') || 'the pool is critical');
      else if (refused.length)
        set(
          'Ready',
          'True',
          'DiskRefused',
          `the node refused ${refused.map((d) => `${d.path} (${d.reason ?? 'no reason given'})`).join('; ')}`,
        );
      else if (unconfirmed.length)
        set(
          'Ready',
          'True',
          'RemovalNotConfirmed',
          `disks ${unconfirmed.join(', ')} left spec.disks but are not in spec.confirmDiskRemoval: they stay until confirmed`,
        );
      else set('Ready', 'True', 'PoolServing', `pool open on node ${pool.spec.nodeName}`);
      const failedDisks = (st.disks ?? []).filter((d) => d.health === 'failed');
      if (st.health === 'healthy') set('Degraded', 'False', 'AllHealthy', 'every disk healthy, every extent fully protected');
      else {
        // Shared failure domains are a standing warning: nothing failed, but one device can take more than the policy tolerates.
        const fd = st.failureDomains;
        const shared = fd !== undefined && (fd.short.length > 0 || fd.sharedExtents > 0);
        const sickDisk = (st.disks ?? []).some((d) => !['healthy', 'pending', 'refused', 'removed'].includes(d.health));
        const reason = failedDisks.length
          ? 'DiskFailed'
          : (st.extents?.unrecoverable ?? 0) > 0
            ? 'ExtentsUnrecoverable'
            : (st.extents?.degraded ?? 0) > 0
              ? 'ExtentsDegraded'
              : sickDisk || !shared
                ? 'DiskUnhealthy'
                : 'SharedFailureDomains';
        set('Degraded', 'True', reason, reasons.join('; ') || `health ${st.health}`);
      }
    }
    const rebuilding = op?.kind.startsWith('rebuild') ?? false;
    const scrubbing = op?.kind.startsWith('scrub') ?? false;
    set(
      'Rebuilding',
      rebuilding ? 'True' : 'False',
      rebuilding ? 'RebuildRunning' : 'Idle',
      rebuilding ? `${op?.extentsDone}/${op?.extentsTotal} extents` : 'no rebuild running',
    );
    set(
      'Scrubbing',
      scrubbing ? 'True' : 'False',
      scrubbing ? 'ScrubRunning' : 'Idle',
      scrubbing ? `${op?.extentsDone}/${op?.extentsTotal} extents` : 'no scrub running',
    );

    await this.emitTransitions(pool, st, patch);
    patch.observedGeneration = gen;
    patch.conditions = conditions;
    await this.client.mergePatch(`${poolPath(name)}/status`, { status: patch });
    if (!fresh) requeueMs = Math.min(requeueMs, 5000);
    return requeueMs;
  }

  /** Deletion waits while the pool still holds volumes (the finalizer stays). */
  private async finalize(pool: DynamicFSPool, finalizers: string[]): Promise<number | null> {
    if (!finalizers.includes(FINALIZER)) return null;
    const volumes = pool.status?.volumes ?? 0;
    if (volumes > 0) {
      const conditions = setCondition(pool.status?.conditions, {
        type: 'Ready',
        status: 'False',
        reason: 'DeletionBlocked',
        message: `the pool still holds ${volumes} volume(s); delete their PersistentVolumeClaims first`,
        observedGeneration: pool.metadata.generation ?? 0,
      });
      await this.client.mergePatch(`${poolPath(pool.metadata.name)}/status`, { status: { conditions } });
      if (conditionOf(pool.status?.conditions, 'Ready')?.reason !== 'DeletionBlocked') {
        await this.events.emit(
          this.regarding(pool),
          'Warning',
          'DeletionBlocked',
          'Delete',
          `pool ${pool.metadata.name} holds ${volumes} volume(s); deletion waits`,
        );
      }
      return 10_000;
    }
    await this.client.mergePatch(poolPath(pool.metadata.name), {
      metadata: { finalizers: finalizers.filter((f) => f !== FINALIZER), resourceVersion: pool.metadata.resourceVersion },
    });
    log.info(`pool ${pool.metadata.name} released for deletion`);
    return null;
  }

  private regarding(pool: DynamicFSPool) {
    return { apiVersion: `${GROUP}/${VERSION}`, kind: 'DynamicFSPool', name: pool.metadata.name, uid: pool.metadata.uid };
  }

  /** Events for disk failures and for scrubs and rebuilds starting and ending, seen as changes since the last look. */
  private async emitTransitions(pool: DynamicFSPool, st: PoolStatus, patch: PoolStatus): Promise<void> {
    const prev = this.seen.get(pool.metadata.name);
    const ack = st.acknowledged ?? {};
    // What has been asked of the node (by a user's request or by this operator) and what it has done.
    const now: Seen = {
      diskHealth: new Map((st.disks ?? []).map((d) => [d.path, d.health])),
      operation: st.operation?.kind ?? null,
      lastScrub: st.lastScrub?.time ?? null,
      scrubAck: `${ack.scrub ?? ''}|${ack.scheduledScrub ?? ''}`,
      rebuildAck: `${ack.rebuild ?? ''}|${ack.rebuildWanted ?? ''}`,
      scrubAsk: `${pool.spec.requests?.scrub ?? ''}|${patch.scrubDue ?? st.scrubDue ?? ''}`,
      rebuildAsk: `${pool.spec.requests?.rebuild ?? ''}|${patch.rebuildWanted ?? st.rebuildWanted ?? ''}`,
    };
    this.seen.set(pool.metadata.name, now);
    if (!prev) return; // first look after a start: nothing to compare with
    const r = this.regarding(pool);
    for (const [path, health] of now.diskHealth) {
      if (health === 'failed' && prev.diskHealth.get(path) !== 'failed')
        await this.events.emit(r, 'Warning', 'DiskFailed', 'Health', `disk ${path} failed`);
    }
    if (now.rebuildAsk !== prev.rebuildAsk && now.rebuildAsk !== now.rebuildAck) {
      await this.events.emit(
        r,
        'Normal',
        'RebuildStarted',
        'Rebuild',
        patch.rebuildWanted
          ? `rebuild asked of node ${pool.spec.nodeName}: ${patch.rebuildWanted}`
          : 'rebuild requested in spec.requests.rebuild',
      );
    }
    if (now.rebuildAck !== prev.rebuildAck) {
      await this.events.emit(
        r,
        'Normal',
        'RebuildFinished',
        'Rebuild',
        `rebuild finished: ${st.extents?.degraded ?? 0} extents still degraded, ${st.extents?.unrecoverable ?? 0} unrecoverable`,
      );
    }
    if (now.scrubAsk !== prev.scrubAsk && now.scrubAsk !== now.scrubAck) {
      await this.events.emit(
        r,
        'Normal',
        'ScrubStarted',
        'Scrub',
        patch.scrubDue ? `scheduled scrub due at ${patch.scrubDue}` : 'scrub requested in spec.requests.scrub',
      );
    }
    if (now.scrubAck !== prev.scrubAck) {
      await this.events.emit(
        r,
        st.lastScrub?.issues ? 'Warning' : 'Normal',
        'ScrubFinished',
        'Scrub',
        `scrub finished: ${st.lastScrub?.issues ?? 0} issues, ${st.lastScrub?.repaired ?? 0} repaired, ${st.lastScrub?.unrecoverable ?? 0} unrecoverable`,
      );
    }
  }
}
