import { EXTENT_SIZE_RULE, isExtentSize, type Tier } from '../config/rules.js';
import { randomUUID } from 'node:crypto';
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { changedFields, resolveConfig } from '../config/load.js';
import type { ConfigFile, EngineConfig } from '../config/schema.js';
import { DEFAULT_CHECKSUM, isChecksumAlgorithm, type ChecksumAlgorithm } from '../integrity/checksum.js';
import { logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { MetadataStore } from '../metadata/store.js';
import { MirrorThread } from '../metadata/mirror-thread.js';
import { formatPolicy, parsePolicy, type RedundancyPolicy } from '../redundancy/policy.js';
import { isNodeError } from '../util/errors.js';
import { isDiskHealth, type DiskHealth } from './disk-health.js';
import { nextHealth, type DiskErrorKind, type ErrorTally, type HealthThresholds } from './health-policy.js';
import { DiskSet, type Disk } from './disk-set.js';
import { rawSpace } from './capacity.js';
import {
  readDiskIdentity,
  readPoolIdentity,
  writeDiskIdentity,
  writeFileAtomic,
  writePoolIdentity,
  type PoolIdentity,
} from './identity.js';
import { DISK_DATA_DIR, DISK_HINTS, fragmentPath, mirrorPath, POOL_METADATA } from './layout.js';
import { PoolLock } from './lock.js';
import { diskPathProblems, diskPathProblemsByName, type DiskPathProblem } from './disk-path.js';
import { readMounts } from '../util/mountinfo.js';
import { domainLabel, failureDomainProblem, sharedWithNew } from './failure-domain.js';
import { ExtentVersions } from './extent-versions.js';
import { fragmentDirs, tightenDisk, tightenFragments, tightenPoolDir } from './private-layout.js';
import { createPrivateFile, mkdirPrivate, PRIVATE_DIR, PRIVATE_FILE, tighten } from '../util/private-files.js';

export interface PoolSettings {
  extentSize: number;
  defaultPolicy: RedundancyPolicy;
  checksum: ChecksumAlgorithm;
}

export class PoolError extends Error {}

/** Where add-disk may look for disks (see Pool.addDisk), and the disk's failure domain. */
export interface DiskGuard {
  allowedRoots?: string[];
  allowAnyPath?: boolean;
  mountpoint?: string | null;
  protectedDirs?: string[];
  /** The administrator's name for the disk's failure domain (an enclosure, a controller). */
  failureDomain?: string | null;
  /** Accept a disk that shares a failure domain with one already in the pool (adds capacity, not redundancy). */
  allowSharedDomain?: boolean;
  /** The disk this one replaces (replace-disk): sharing its domain is expected. */
  replacing?: string;
}

function diskRefusal(p: string, problems: DiskPathProblem[]): string {
  const lift = problems.every((x) => x.overridable) ? ' (add --allow-any-path to add it anyway)' : '';
  return `refusing disk ${p}: ${[...new Set(problems.map((x) => x.problem))].join('; ')}${lift}`;
}

const log = logger('pool');

/** What scrub, rebuild and drain report as they go. */
export interface OperationProgress {
  extentsDone: number;
  extentsTotal: number;
  bytesRead?: number;
  bytesWritten?: number;
}

/** How many disks carry a copy of the metadata database besides the pool directory. */
const METADATA_MIRRORS = 3;
/** Mirror copies wait for this long without metadata changes ... */
const MIRROR_QUIET_MS = 2000;
/** ... but no change waits longer than this for its copy. */
const MIRROR_MAX_DELAY_MS = 30_000;

/** A pool opened by this process: its identity, metadata, disks and the lock that makes it ours. */
export class Pool {
  readonly disks: DiskSet;
  /** The extent-version write protocol: intent, commit, recovery. */
  readonly versions: ExtentVersions;
  private reaping: Promise<void> | null = null;
  private mirrorTimer: NodeJS.Timeout | null = null;
  private mirrorThread: MirrorThread | null = null;
  private mirrorDirty = false;
  private mirrorDirtySince = 0;
  private mirrorLastChange = 0;
  private mirrorDue = 0;
  private mirroring: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly identity: PoolIdentity,
    readonly store: MetadataStore,
    readonly settings: PoolSettings,
    private readonly lock: PoolLock,
  ) {
    this.disks = new DiskSet(store);
    this.versions = new ExtentVersions(store, this.disks, {
      reapGarbage: () => this.reapGarbage(),
      scheduleMirror: () => this.scheduleMirror(),
    });
  }

  /** Whether fragments of one extent may share a failure domain (reliability.allow_shared_failure_domains). */
  sharedDomainsAllowed(): boolean {
    return this.config.reliability.allow_shared_failure_domains;
  }

  get id(): string {
    return this.identity.poolId;
  }
  get name(): string {
    return this.identity.name;
  }

  static validateSettings(s: { extentSize: number }): void {
    if (!isExtentSize(s.extentSize)) {
      throw new PoolError(`extent size ${s.extentSize} must be ${EXTENT_SIZE_RULE}`);
    }
  }

  /** Creates a pool; `config` (a preset and overrides) is stored in it and governs it from then on. */
  static async create(dir: string, settings: PoolSettings, config: ConfigFile = {}): Promise<PoolIdentity> {
    Pool.validateSettings(settings);
    resolveConfig(config, { source: 'pool configuration' });
    const abs = path.resolve(dir);
    await fsp.mkdir(abs, { recursive: true, mode: PRIVATE_DIR });
    if (await readPoolIdentity(abs)) throw new PoolError(`${abs} already holds a pool; choose another directory`);
    const entries = (await fsp.readdir(abs)).filter((e) => !e.startsWith('.'));
    if (entries.length > 0)
      throw new PoolError(`${abs} is not empty (found ${entries.slice(0, 3).join(', ')}); a pool needs an empty directory`);
    await tighten(abs, PRIVATE_DIR);
    const identity: PoolIdentity = { poolId: randomUUID(), name: path.basename(abs), createdAt: new Date().toISOString(), format: 1 };
    // Created 0600 before SQLite opens it: its WAL and shared-memory files take the database's mode.
    await createPrivateFile(path.join(abs, POOL_METADATA));
    const store = new MetadataStore(path.join(abs, POOL_METADATA), { create: true });
    MetadataStore.initialise(
      store,
      {
        pool_id: identity.poolId,
        extent_size: String(settings.extentSize),
        default_policy: formatPolicy(settings.defaultPolicy),
        checksum: settings.checksum,
        generation: '1',
        config: JSON.stringify(config),
        // Every file of this pool is created private: no older files to tighten.
        private_files: '1',
      },
      Date.now(),
    );
    store.close();
    await writePoolIdentity(abs, identity);
    return identity;
  }

  /** Opens a pool and takes its lock. Recovers metadata from a disk mirror if the pool's copy is gone. */
  static async open(dir: string, options: { mountpoint?: string | null } = {}): Promise<Pool> {
    const abs = path.resolve(dir);
    const identity = await readPoolIdentity(abs);
    if (!identity) throw new PoolError(`${abs} is not a DynamicFS pool (no pool.json); create one with 'dynamicfs init ${dir}'`);
    const lock = PoolLock.acquire(abs, options.mountpoint ?? null);
    try {
      // Pools made by older versions were readable by every local user: close them first.
      await tightenPoolDir(abs);
      const dbFile = path.join(abs, POOL_METADATA);
      if (!fs.existsSync(dbFile)) await restoreFromMirror(abs, identity.poolId, dbFile);
      const store = new MetadataStore(dbFile);
      if (store.getMeta('pool_id') !== identity.poolId) {
        store.close();
        throw new PoolError(`${dbFile} belongs to pool ${store.getMeta('pool_id')}, not ${identity.poolId}`);
      }
      const checksumName = store.getMeta('checksum') ?? DEFAULT_CHECKSUM;
      if (!isChecksumAlgorithm(checksumName)) throw new PoolError(`metadata names unknown checksum algorithm '${checksumName}'`);
      const settings: PoolSettings = {
        extentSize: Number(store.getMeta('extent_size')),
        defaultPolicy: parsePolicy(store.getMeta('default_policy') ?? 'replication:2'),
        checksum: checksumName,
      };
      const pool = new Pool(abs, identity, store, settings, lock);
      const perf = pool.config.performance;
      store.setCacheSize(perf.metadata_cache ? perf.metadata_cache_size : 0);
      for (const d of pool.disks.all()) await tightenDisk(d.path).catch(() => undefined);
      await pool.verifyDiskIdentities();
      await pool.disks.refreshSpace();
      await pool.disks.refreshDomains();
      pool.reportSharedDomains();
      // Finishes what a crash interrupted: uncommitted versions and repairs, unlinked inodes.
      await pool.versions.recover();
      return pool;
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  setMountpoint(mnt: string | null): void {
    this.lock.updateMountpoint(mnt);
  }

  /** A disk whose identity file is gone or names another pool is failed, never silently trusted. */
  private async verifyDiskIdentities(): Promise<void> {
    for (const d of this.disks.all()) {
      if (d.health === 'failed') continue;
      const id = await readDiskIdentity(d.path).catch(() => undefined);
      if (!id) this.setDiskHealth(d.id, 'failed', `identity file missing at ${d.path} (disk gone or moved)`);
      else if (id.poolId !== this.id || id.diskId !== d.id)
        this.setDiskHealth(d.id, 'failed', `identity file at ${d.path} names another disk or pool`);
    }
  }

  /**
   * Adds a directory as a disk. `guard` says where disks may be: a path inside or above any DynamicFS
   * mount, this pool's directory or another pool's is always refused; one outside the allowed roots
   * (`guard.allowedRoots`, else `security.disk_roots`) or in a system directory is refused unless
   * `guard.allowAnyPath` (the CLI's explicit --allow-any-path).
   */
  async addDisk(
    diskPath: string,
    tier: Tier,
    cap: number | null,
    guard: DiskGuard = {},
  ): Promise<{ disk: Disk; recognised: boolean; warning?: string }> {
    const abs = path.resolve(diskPath);
    const domainProblem =
      guard.failureDomain === undefined || guard.failureDomain === null ? null : failureDomainProblem(guard.failureDomain);
    if (domainProblem) throw new PoolError(domainProblem);
    const rules = {
      poolDir: this.dir,
      mountpoint: guard.mountpoint ?? null,
      disks: this.disks.all().map((d) => d.path),
      allowedRoots: (guard.allowedRoots ?? this.config.security.disk_roots).map((r) => path.resolve(r)),
      protectedDirs: guard.protectedDirs,
      mounts: await readMounts(),
    };
    // On the name first: a path inside a DynamicFS mount must not even be looked up by the daemon serving it.
    const named = diskPathProblemsByName(abs, rules).filter((x) => !x.overridable || !guard.allowAnyPath);
    if (named.length) throw new PoolError(diskRefusal(abs, named));
    let st: fs.Stats;
    try {
      st = await fsp.stat(abs);
    } catch {
      throw new PoolError(`disk path ${abs} does not exist; create the directory (or mount the device) first`);
    }
    if (!st.isDirectory()) throw new PoolError(`disk path ${abs} is not a directory`);
    const found = (await diskPathProblems(abs, rules)).filter((x) => !x.overridable || !guard.allowAnyPath);
    if (found.length) throw new PoolError(diskRefusal(abs, found));
    const existing = await readDiskIdentity(abs);
    if (existing && existing.poolId !== this.id) {
      throw new PoolError(`disk ${abs} belongs to another pool (${existing.poolId}); refusing to add it`);
    }
    if (existing) {
      const known = this.disks.get(existing.diskId);
      if (!known) throw new PoolError(`disk ${abs} carries this pool's id but disk id ${existing.diskId} is not in the pool's metadata`);
      if (known.path !== abs) {
        // A copy of the identity file is no move: the disk is still where it was.
        const still = await readDiskIdentity(known.path).catch(() => undefined);
        if (
          still?.diskId === known.id &&
          (await fsp.stat(path.join(known.path, DISK_DATA_DIR, 'fragments')).then(
            () => true,
            () => false,
          ))
        ) {
          throw new PoolError(
            `disk ${known.id} is still at ${known.path} (its identity and fragments are there); ${abs} holds a copy of its identity file, not the disk`,
          );
        }
        this.store.setDiskPath(known.id, abs);
        this.disks.reload();
        await this.writeDiskHints();
        await this.disks.refreshSpace();
        await this.disks.refreshDomains();
        return { disk: this.disks.get(known.id) as Disk, recognised: true };
      }
      throw new PoolError(`disk ${abs} is already in the pool as ${known.id}`);
    }
    for (const d of this.disks.all()) if (d.path === abs) throw new PoolError(`a disk at ${abs} is already in the pool as ${d.id}`);
    const sharing = await sharedWithNew(
      this.disks.all().filter((d) => d.health !== 'failed' && d.id !== guard.replacing),
      abs,
      guard.failureDomain ?? null,
    );
    let warning: string | undefined;
    if (sharing) {
      const what = `${abs} shares failure domain ${sharing.domain} with ${sharing.disks.map((d) => `${d.id} (${d.path})`).join(', ')}: one device failure can take both`;
      if (!guard.allowSharedDomain && !this.config.reliability.allow_shared_failure_domains) {
        throw new PoolError(
          `refusing disk ${what}. Add it with --allow-shared-domain to use it for capacity only (fragments of an extent never share a domain), or name its real domain with --failure-domain NAME`,
        );
      }
      warning = `disk ${what}`;
      log.warn(warning, { pool: this.name, disk: abs, domain: sharing.domain });
    }
    const diskId = `disk-${randomUUID().slice(0, 8)}`;
    const dataDir = path.join(abs, DISK_DATA_DIR);
    const hadDataDir = await fsp.stat(dataDir).then(
      () => true,
      () => false,
    );
    try {
      // One level first: a recursive mkdir reports a read-only filesystem as ENOENT.
      await fsp.mkdir(dataDir, PRIVATE_DIR).catch((err: unknown) => {
        if (!isNodeError(err, 'EEXIST')) throw err;
      });
      await mkdirPrivate(path.join(dataDir, 'fragments'));
      await Promise.all(fragmentDirs(abs).map((d) => mkdirPrivate(d)));
      await tightenDisk(abs);
      await writeDiskIdentity(abs, { poolId: this.id, diskId, addedAt: new Date().toISOString() });
    } catch (err) {
      // Nothing left behind: what this add made is removed again.
      if (!hadDataDir) await fsp.rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
      throw new PoolError(
        `cannot prepare disk ${abs}: ${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`.replace(/  +/, ' '),
      );
    }
    const now = Date.now();
    this.store.tx(() => {
      this.store.insertDisk({
        id: diskId,
        path: abs,
        tier,
        capacity: cap,
        health: 'healthy',
        at: now,
        failureDomain: guard.failureDomain ?? null,
      });
      this.store.setMeta('generation', String(Number(this.store.getMeta('generation') ?? '0') + 1));
    });
    this.disks.reload();
    await this.disks.refreshSpace();
    await this.disks.refreshDomains();
    await this.writeDiskHints();
    this.mirrorDirty = true;
    await this.mirrorNow();
    return { disk: this.disks.get(diskId) as Disk, recognised: false, warning };
  }

  /** Names a disk's failure domain (`null`: detect it from the devices again). */
  async setFailureDomain(ref: string, name: string | null): Promise<{ disk: Disk; warning?: string }> {
    const d = this.findDisk(ref);
    const problem = name === null ? null : failureDomainProblem(name);
    if (problem) throw new PoolError(problem);
    this.store.tx(() => {
      this.store.setFailureDomain(d.id, name);
      this.store.setMeta('generation', String(Number(this.store.getMeta('generation') ?? '0') + 1));
    });
    this.disks.reload();
    await this.disks.refreshDomains();
    this.scheduleMirror();
    const now = this.disks.get(d.id) as Disk;
    const with_ = this.disks.all().filter((x) => x.id !== d.id && x.domain === now.domain);
    const warning = with_.length
      ? `disk ${d.id} now shares failure domain ${domainLabel(now.domain)} with ${with_.map((x) => x.id).join(', ')}`
      : undefined;
    this.reportSharedDomains();
    return { disk: now, warning };
  }

  /** Logs the disks that share a failure domain (their extents are counted by status, in the background of a daemon). */
  reportSharedDomains(): void {
    const byDomain = new Map<string, Disk[]>();
    for (const d of this.disks.all()) byDomain.set(d.domain, [...(byDomain.get(d.domain) ?? []), d]);
    const shared = [...byDomain].filter(([, ds]) => ds.length > 1);
    if (shared.length)
      log.warn(
        `disks share failure domains: ${shared.map(([k, ds]) => `${domainLabel(k)} holds ${ds.map((d) => d.id).join(', ')}`).join('; ')}`,
        { pool: this.name },
      );
  }

  /**
   * Fragment files that older versions wrote 0644, made 0600: once per pool, in the background of a
   * daemon (their directories are private from the moment the pool is opened). Returns how many.
   */
  async tightenFragmentFiles(): Promise<number> {
    if (this.store.getMeta('private_files') === '1') return 0;
    let n = 0;
    let complete = true;
    for (const d of this.disks.all()) {
      if (this.closed) return n;
      n += await tightenFragments(d.path).catch(() => {
        complete = false;
        return 0;
      });
    }
    if (complete && !this.closed) this.store.setMeta('private_files', '1');
    return n;
  }

  findDisk(ref: string): Disk {
    const abs = path.resolve(ref);
    const d = this.disks.get(ref) ?? this.disks.all().find((x) => x.path === abs);
    if (!d)
      throw new PoolError(
        `no disk '${ref}' in pool ${this.name} (known: ${
          this.disks
            .all()
            .map((x) => x.id)
            .join(', ') || 'none'
        })`,
      );
    return d;
  }

  setDiskHealth(id: string, state: DiskHealth, reason: string): void {
    if (!isDiskHealth(state)) throw new PoolError(`'${state}' is not a disk state`);
    const d = this.disks.get(id);
    const from = d?.health ?? null;
    this.store.setDiskHealth(id, from, state, reason, Date.now());
    this.disks.reload();
    if (state === 'healthy') this.tallies.delete(id); // trusted again: count afresh
    if (from !== state) {
      log.event(
        state === 'healthy' ? 'info' : state === 'failed' ? 'error' : 'warn',
        `disk ${id} ${from ?? 'new'} -> ${state}: ${reason}`,
        { pool: this.name, disk: id, path: d?.path, from, to: state, reason },
      );
      this.onDiskHealthChange?.(id, state, reason);
    }
  }

  private configCache: EngineConfig | null = null;

  /** The configuration document stored in the pool: a preset and overrides. */
  get configFile(): ConfigFile {
    return JSON.parse(this.store.getMeta('config') ?? '{}') as ConfigFile;
  }

  /** The pool's configuration resolved: preset, stored overrides, then this process's environment. */
  get config(): EngineConfig {
    this.configCache ??= resolveConfig(this.configFile, { env: process.env, source: 'pool configuration' });
    return this.configCache;
  }

  /**
   * Replaces the stored configuration after checking it. Returns the fields that changed; the caller
   * (a running daemon) applies the live ones and reports the others as needing a restart.
   */
  applyConfig(file: ConfigFile, source = 'configuration'): string[] {
    const before = this.config;
    const after = resolveConfig(file, { env: process.env, source });
    this.store.setMeta('config', JSON.stringify(file));
    this.configCache = after;
    const changed = changedFields(before, after);
    if (changed.length) this.onConfigChange?.(after, before);
    return changed;
  }

  /** Changes some reliability fields, keeping the rest of the stored configuration. */
  tuneReliability(fields: NonNullable<ConfigFile['reliability']>): string[] {
    const file = this.configFile;
    file.reliability = { ...file.reliability, ...fields };
    return this.applyConfig(file, 'tune');
  }

  /** Keeps a sample for diagnostics (usage growth, error rates, rebuild and scrub outcomes), bounded by the configuration. */
  recordHistory(kind: 'usage' | 'rebuild' | 'scrub', data: Record<string, unknown>, at = Date.now()): void {
    try {
      this.store.addHistory(kind, at, data, this.config.monitoring.history_samples);
    } catch {
      /* metadata closed under us (shutdown) */
    }
  }

  /** A usage sample: raw bytes used and capacity, and per disk its used bytes and error counts. */
  recordUsage(): void {
    const disks = this.disks.all();
    this.recordHistory('usage', {
      used: disks.reduce((s, d) => s + d.used, 0),
      capacity: rawSpace(disks.filter((d) => d.health !== 'failed')).capacity,
      disks: Object.fromEntries(
        disks.map((d) => [d.id, { used: d.used, tier: d.tier, errors: d.readErrors + d.writeErrors + d.checksumErrors }]),
      ),
    });
  }

  /** Set by the mount daemon: reacts to live configuration changes. */
  onConfigChange: ((next: EngineConfig, previous: EngineConfig) => void) | null = null;

  /** Health thresholds, from the configuration's reliability section. */
  get thresholds(): HealthThresholds {
    const r = this.config.reliability;
    return {
      errorsSuspect: r.errors_suspect,
      readErrorsFailed: r.read_errors_failed,
      slowIoMs: r.slow_io_ms,
      slowOpsDegraded: r.slow_ops_degraded,
    };
  }

  /** Counts an I/O error against a disk and moves it to suspect or failed when a threshold is crossed. */
  private readonly tallies = new Map<string, ErrorTally>();

  recordDiskError(id: string, kind: DiskErrorKind): void {
    const d = this.disks.get(id);
    if (!d) return;
    try {
      metrics.diskErrors.inc({ pool: this.name, disk: id, kind });
      const tally = this.tallies.get(id) ?? { read: 0, write: 0, checksum: 0, slow: 0 };
      this.tallies.set(id, tally);
      if (kind === 'write' || kind === 'readonly') tally.write++;
      else tally[kind]++;
      if (kind !== 'slow')
        this.store.bumpDiskErrors(id, kind === 'checksum' ? { checksum: 1 } : kind === 'read' ? { read: 1 } : { write: 1 });
      this.disks.reload();
      const next = nextHealth(this.disks.get(id) as Disk, kind, tally, this.thresholds);
      if (next) this.setDiskHealth(id, next.state, next.reason);
    } catch {
      /* metadata closed under us (shutdown): the I/O result stands */
    }
  }

  /** The long operation under way (scrub, rebuild, drain), for status. */
  activeOperation: { kind: string; startedAt: string; extentsDone: number; extentsTotal: number; bytes: number } | null = null;

  /** Wraps a long operation so status can show its progress. */
  async track<T>(
    kind: string,
    run: (progress: (p: OperationProgress) => void) => Promise<T>,
    outer?: (p: OperationProgress) => void,
  ): Promise<T> {
    const op = { kind, startedAt: new Date().toISOString(), extentsDone: 0, extentsTotal: 0, bytes: 0 };
    this.activeOperation = op;
    try {
      return await run((p) => {
        op.extentsDone = p.extentsDone;
        op.extentsTotal = p.extentsTotal;
        op.bytes = p.bytesRead ?? p.bytesWritten ?? 0;
        outer?.(p);
      });
    } finally {
      if (this.activeOperation === op) this.activeOperation = null;
    }
  }

  get autoRebuild(): boolean {
    return this.config.reliability.auto_rebuild;
  }

  get rebuildLimits(): { concurrency: number; bandwidthBytes: number | undefined } {
    const r = this.config.reliability;
    return { concurrency: r.rebuild_concurrency, bandwidthBytes: r.rebuild_bandwidth > 0 ? r.rebuild_bandwidth : undefined };
  }

  /** Called after an automatic transition (the mount daemon starts a rebuild when a disk fails). */
  onDiskHealthChange: ((id: string, state: DiskHealth, reason: string) => void) | null = null;

  setDefaultPolicy(policy: RedundancyPolicy): void {
    this.store.setMeta('default_policy', formatPolicy(policy));
    this.settings.defaultPolicy = policy;
  }

  /** Deletes fragment files whose metadata is gone, then forgets them. */
  reapGarbage(): Promise<void> {
    if (this.reaping) return this.reaping;
    if (!this.store.garbagePending) return Promise.resolve();
    this.reaping = (async () => {
      // Files that cannot be deleted now (a read-only or failing disk) stay listed for a later pass.
      const stuck = new Set<string>();
      for (;;) {
        const batch = this.store.garbage(256 + stuck.size).filter((g) => !stuck.has(`${g.disk}/${g.eid}.${g.slot}`));
        if (batch.length === 0) {
          if (stuck.size === 0) this.store.garbagePending = false;
          break;
        }
        const done = await Promise.all(
          batch.map(async (g) => {
            const d = this.disks.get(g.disk);
            if (!d) return true;
            try {
              await fsp.unlink(fragmentPath(d.path, g.eid, g.slot));
              return true;
            } catch (err) {
              if (isNodeError(err, 'ENOENT') || isNodeError(err, 'ENOTDIR')) return true;
              stuck.add(`${g.disk}/${g.eid}.${g.slot}`);
              return false;
            }
          }),
        );
        const reclaimed = batch.filter((_, i) => done[i]);
        this.store.reclaimed(reclaimed);
        for (const g of reclaimed) this.disks.noteUsed(g.disk, -g.size);
        if (reclaimed.length === 0) break;
      }
    })()
      .catch(() => undefined) // metadata closed during shutdown: the next open finishes the job
      .finally(() => {
        this.reaping = null;
      });
    return this.reaping;
  }

  /**
   * For a long-lived process: mirror copies are made on a thread of their own, so their writes and
   * fsyncs do not hold up the event loop. Without it (or once it has died) they are made here.
   */
  startMirrorThread(): void {
    if (!this.mirrorThread && !this.closed) this.mirrorThread = new MirrorThread(this.store.file);
  }

  /**
   * Copies the metadata database to a few disks, so losing the pool directory loses nothing either,
   * once changes have been quiet for `quietMs` or the oldest uncopied change is `maxDelayMs` old: a
   * burst of commits costs one copy, not one every two seconds, and a copy (its reads, writes and
   * fsyncs) does not land in the middle of the burst.
   */
  scheduleMirror(quietMs = MIRROR_QUIET_MS, maxDelayMs = MIRROR_MAX_DELAY_MS): void {
    const now = Date.now();
    if (!this.mirrorDirty) this.mirrorDirtySince = now;
    this.mirrorDirty = true;
    this.mirrorLastChange = now;
    if (this.closed) return;
    const due = Math.min(now + quietMs, this.mirrorDirtySince + maxDelayMs);
    if (this.mirrorTimer && due >= this.mirrorDue) return;
    if (this.mirrorTimer) clearTimeout(this.mirrorTimer);
    this.armMirror(due, quietMs, maxDelayMs);
  }

  /** The timer is armed once per burst, not per commit: when it fires it looks at the last change. */
  private armMirror(due: number, quietMs: number, maxDelayMs: number): void {
    this.mirrorDue = due;
    this.mirrorTimer = setTimeout(
      () => {
        this.mirrorTimer = null;
        const next = Math.min(this.mirrorLastChange + quietMs, this.mirrorDirtySince + maxDelayMs);
        if (this.mirrorDirty && next > Date.now()) this.armMirror(next, quietMs, maxDelayMs);
        else void this.mirrorNow();
      },
      Math.max(0, due - Date.now()),
    );
    this.mirrorTimer.unref();
  }

  mirrorNow(): Promise<void> {
    this.mirroring = this.mirroring.then(async () => {
      if (!this.mirrorDirty) return;
      this.mirrorDirty = false;
      const targets = this.disks
        .all()
        .filter((d) => d.health !== 'failed')
        .slice(0, METADATA_MIRRORS);
      // A copy takes room on a data disk beside the fragments: held while it is made (the old copy
      // and the new are both there until the rename), and statfs asked again after.
      const room = await metadataBytes(this.store.file);
      for (const d of targets) {
        const dest = mirrorPath(d.path);
        const tmp = `${dest}.tmp`;
        this.disks.reserve(d.id, room);
        try {
          // An empty 0600 file for SQLite's backup to fill: a copy names every file of the pool.
          await fsp.rm(tmp, { force: true });
          await createPrivateFile(tmp);
          if (this.mirrorThread?.running) await this.mirrorThread.copyTo(tmp);
          else await this.store.backup(tmp);
          await fsp.rename(tmp, dest);
        } catch {
          await fsp.rm(tmp, { force: true }).catch(() => undefined);
        } finally {
          this.disks.reserve(d.id, -room);
        }
      }
      if (targets.length) await this.disks.refreshSpace();
    });
    return this.mirroring;
  }

  /** Keeps the disk hints and the metadata mirrors in step with the set of disks. */
  async afterDiskSetChange(): Promise<void> {
    await this.disks.refreshDomains();
    await this.writeDiskHints();
    this.mirrorDirty = true;
    await this.mirrorNow();
  }

  /** Disk paths in the pool directory, so a lost metadata database can be found again on the disks. */
  private async writeDiskHints(): Promise<void> {
    await writeFileAtomic(
      path.join(this.dir, DISK_HINTS),
      this.disks
        .all()
        .map((d) => d.path)
        .join('\n') + '\n',
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.mirrorTimer) clearTimeout(this.mirrorTimer);
    this.mirrorTimer = null;
    await this.reapGarbage();
    this.mirrorDirty = true;
    await this.mirrorNow();
    this.closed = true;
    await this.mirrorThread?.close();
    this.store.makeDurable();
    this.store.close();
    this.lock.release();
  }
}

/** Bytes a copy of the metadata may take: the database and its write-ahead log. */
async function metadataBytes(file: string): Promise<number> {
  const size = (f: string) =>
    fsp.stat(f).then(
      (st) => st.size,
      () => 0,
    );
  return (await size(file)) + (await size(`${file}-wal`));
}

async function restoreFromMirror(poolDir: string, poolId: string, dbFile: string): Promise<void> {
  // The pool directory lost its database: take the newest mirror that names this pool.
  const candidates: { file: string; generation: number; mtime: number }[] = [];
  const hints = await fsp
    .readFile(path.join(poolDir, DISK_HINTS), 'utf8')
    .then((s) => s.split('\n').filter(Boolean))
    .catch(() => []);
  for (const diskPath of hints) {
    const file = mirrorPath(diskPath);
    try {
      const st = await fsp.stat(file);
      const store = new MetadataStore(file);
      if (store.getMeta('pool_id') === poolId)
        candidates.push({ file, generation: Number(store.getMeta('generation') ?? 0), mtime: st.mtimeMs });
      store.close();
    } catch {
      /* not usable */
    }
  }
  candidates.sort((a, b) => b.mtime - a.mtime);
  if (!candidates.length) throw new PoolError(`${dbFile} is missing and no disk holds a mirror of this pool's metadata`);
  await fsp.copyFile(candidates[0].file, dbFile);
  await fsp.chmod(dbFile, PRIVATE_FILE);
}
