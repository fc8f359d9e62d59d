import type { FileSystem } from '../fs/filesystem.js';
import { MAX_INODES, type Quota } from '../fs/quota.js';
import { ROOT_INO, type MetadataStore } from '../metadata/store.js';
import { domainCount, rawSpace, usableSpace } from '../pool/capacity.js';
import type { Disk } from '../pool/disk-set.js';
import type { Pool } from '../pool/pool.js';
import { efficiency, formatPolicy, fragmentCount, parsePolicy, type RedundancyPolicy } from '../redundancy/policy.js';
import { volumeNameProblem } from './names.js';

/** A volume: its row and the inode limit it is held to. */
export type VolumeRow = Quota;

/**
 * Mode of a volume's root: every uid of the pod may write there (pods without fsGroup included, as on
 * local-path volumes). What a process in the volume may not change is the volume's policy (see
 * FileSystem.setxattr); the directory is the tenant's own.
 */
const VOLUME_ROOT_MODE = 0o40777;

export class VolumeError extends Error {
  constructor(
    readonly code: 'INVALID' | 'NOT_FOUND' | 'EXISTS' | 'EXHAUSTED' | 'BUSY',
    message: string,
  ) {
    super(message);
    this.name = 'VolumeError';
  }
}

/** What volume lifecycle needs of its pool. */
export interface VolumeHost {
  /** The pool's name, for messages. */
  readonly name: string;
  defaultPolicy(): RedundancyPolicy;
  sharedDomainsAllowed(): boolean;
  /** Disks that take new fragments now. */
  writableDisks(): Disk[];
  /** Frees the fragments of deleted files in the background. */
  reapGarbage(): Promise<void>;
}

/** What volume lifecycle changes in the filesystem: the volume's directory tree and its quota. */
export type VolumeFileSystem = Pick<FileSystem, 'mkdir' | 'entries' | 'unlinkAt' | 'rmdirAt' | 'removeVolumeRoot' | 'ns' | 'quotas'>;

export function volumeHostOf(pool: Pool): VolumeHost {
  return {
    name: pool.name,
    defaultPolicy: () => pool.settings.defaultPolicy,
    sharedDomainsAllowed: () => pool.config.reliability.allow_shared_failure_domains,
    writableDisks: () => pool.disks.writable(),
    reapGarbage: () => pool.reapGarbage(),
  };
}

const opened = new WeakMap<FileSystem, Volumes>();
/** The volumes of the pool a filesystem serves (one Volumes per FileSystem). */
export function volumesOf(pool: Pool, fs: FileSystem): Volumes {
  let v = opened.get(fs);
  if (!v) {
    v = new Volumes(volumeHostOf(pool), pool.store, fs);
    opened.set(fs, v);
  }
  return v;
}

/**
 * Volume lifecycle: top-level directories of a pool, each with a capacity (a quota the filesystem
 * enforces on apparent file size, see fs/quota.ts), a redundancy policy and optionally a tier.
 */
export class Volumes {
  constructor(
    private readonly pool: VolumeHost,
    private readonly meta: Pick<MetadataStore, 'volumes' | 'tx'>,
    private readonly fs: VolumeFileSystem,
  ) {}

  list(): VolumeRow[] {
    return this.fs.quotas.list();
  }

  get(name: string): VolumeRow | undefined {
    return this.fs.quotas.get(name);
  }

  usageOf(name: string): { bytes: number; inodes: number } {
    return this.fs.quotas.usageOf(name);
  }

  create(spec: {
    name: string;
    capacity: number;
    policy?: string;
    tier?: string | null;
    ephemeral?: boolean;
    context?: Record<string, string>;
    inodeLimit?: number;
  }): { volume: VolumeRow; created: boolean } {
    const problem = volumeNameProblem(spec.name);
    if (problem) throw new VolumeError('INVALID', `volume name '${spec.name.slice(0, 64)}' ${problem}`);
    if (!Number.isSafeInteger(spec.capacity) || spec.capacity < 0)
      throw new VolumeError('INVALID', `capacity ${spec.capacity} is not a byte count`);
    if (spec.inodeLimit !== undefined && (!Number.isSafeInteger(spec.inodeLimit) || spec.inodeLimit < 1 || spec.inodeLimit > MAX_INODES)) {
      throw new VolumeError('INVALID', `inode limit ${spec.inodeLimit} is not a whole number from 1 to ${MAX_INODES}`);
    }
    const policy = spec.policy ? formatPolicy(parsePolicy(spec.policy)) : formatPolicy(this.pool.defaultPolicy());
    const tier = spec.tier ?? null;
    const existing = this.get(spec.name);
    if (existing) {
      if (
        existing.capacity !== spec.capacity ||
        existing.policy !== policy ||
        existing.tier !== tier ||
        (spec.inodeLimit !== undefined && spec.inodeLimit !== existing.inodeLimit)
      ) {
        throw new VolumeError(
          'EXISTS',
          `volume ${spec.name} exists with capacity ${existing.capacity}, policy ${existing.policy}, tier ${existing.tier ?? 'any'}`,
        );
      }
      return { volume: existing, created: false };
    }
    const writable = this.pool.writableDisks().filter((d) => tier === null || d.tier === tier);
    const needed = fragmentCount(parsePolicy(policy));
    if (writable.length < needed) {
      throw new VolumeError(
        'EXHAUSTED',
        `policy ${policy} needs ${needed} healthy disks${tier ? ` in tier ${tier}` : ''}; pool ${this.pool.name} has ${writable.length}`,
      );
    }
    const domains = domainCount(writable);
    if (domains < needed && !this.pool.sharedDomainsAllowed()) {
      throw new VolumeError(
        'EXHAUSTED',
        `policy ${policy} needs ${needed} failure domains${tier ? ` in tier ${tier}` : ''}; the healthy disks of pool ${this.pool.name} are in ${domains}`,
      );
    }
    if (spec.capacity > this.available(policy, tier)) {
      throw new VolumeError(
        'EXHAUSTED',
        `pool ${this.pool.name} cannot hold ${spec.capacity} bytes under ${policy}: ${this.available(policy, tier)} available`,
      );
    }
    const dir = `/${spec.name}`;
    if (this.exists(dir)) throw new VolumeError('EXISTS', `pool ${this.pool.name} already has a directory ${dir} that is not a volume`);
    this.fs.mkdir(dir, VOLUME_ROOT_MODE);
    this.fs.ns.setPolicy(dir, policy);
    const ino = this.fs.ns.resolve(dir);
    this.meta.volumes.insert(
      {
        name: spec.name,
        ino,
        capacity: spec.capacity,
        policy,
        tier,
        ephemeral: spec.ephemeral === true,
        context: spec.context ?? {},
        inodeLimit: spec.inodeLimit ?? null,
      },
      Date.now(),
    );
    this.fs.quotas.reload();
    this.fs.quotas.started(spec.name);
    return { volume: this.get(spec.name) as VolumeRow, created: true };
  }

  /** Removes a volume and every file in it; false when there was none. */
  delete(name: string): boolean {
    const v = this.get(name);
    if (!v) return false;
    this.removeTree(`/${name}`);
    this.meta.volumes.remove(name);
    this.fs.quotas.reload();
    void this.pool.reapGarbage();
    return true;
  }

  /**
   * Removes a volume's tree by inode (a path walk per entry would be quadratic in the depth), depth
   * first without recursion (a tree may be deeper than the stack).
   */
  private removeTree(dir: string): void {
    if (!this.exists(dir)) return;
    const name = dir.slice(1);
    const stack: { ino: number; parent: number; name: string; listed: boolean }[] = [
      { ino: this.fs.ns.resolve(dir), parent: ROOT_INO, name, listed: false },
    ];
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top.listed) {
        stack.pop();
        if (top.parent === ROOT_INO) this.fs.removeVolumeRoot(top.name);
        else this.fs.rmdirAt(top.parent, top.name);
        continue;
      }
      top.listed = true;
      for (const e of this.fs.entries(top.ino)) {
        if (e.name === '.' || e.name === '..') continue;
        if ((e.mode & 0o170000) === 0o040000) stack.push({ ino: e.ino, parent: top.ino, name: e.name, listed: false });
        else this.fs.unlinkAt(top.ino, e.name);
      }
    }
  }

  private exists(p: string): boolean {
    try {
      this.fs.ns.resolve(p);
      return true;
    } catch {
      return false;
    }
  }

  expand(name: string, capacity: number): VolumeRow {
    const v = this.get(name);
    if (!v) throw new VolumeError('NOT_FOUND', `no volume ${name} in pool ${this.pool.name}`);
    if (capacity > v.capacity && capacity - v.capacity > this.available(v.policy, v.tier)) {
      throw new VolumeError(
        'EXHAUSTED',
        `pool ${this.pool.name} cannot grow ${name} to ${capacity} bytes: ${this.available(v.policy, v.tier)} available`,
      );
    }
    if (capacity > v.capacity) this.meta.volumes.setCapacity(name, capacity);
    this.fs.quotas.reload();
    return this.get(name) as VolumeRow;
  }

  /** The administrator changes a volume's policy (the CLI's set-policy): the row and the directory agree. */
  setPolicy(name: string, policy: string): void {
    if (!this.get(name)) throw new VolumeError('NOT_FOUND', `no volume ${name} in pool ${this.pool.name}`);
    this.meta.tx(() => {
      this.fs.ns.setPolicy(`/${name}`, policy);
      this.meta.volumes.setPolicy(name, policy);
    });
    this.fs.quotas.reload();
  }

  /**
   * Usable bytes for a new volume: free space of healthy disks (of the tier) under the policy, each
   * filesystem counted once and fragments spread over failure domains, less the share of the raw free
   * space that volumes have reserved and not yet used.
   */
  available(policyText: string, tier: string | null): number {
    const policy = parsePolicy(policyText);
    const disks = this.pool.writableDisks().filter((d) => tier === null || d.tier === tier);
    const usable = usableSpace(disks, policy, this.pool.sharedDomainsAllowed()).free;
    const raw = rawSpace(disks).free;
    if (raw <= 0) return 0;
    // What volumes may still write, in raw bytes, each under its own policy's overhead (a volume of
    // replication:2 holds twice its bytes on the disks); volumes of another tier do not land here.
    const reservedRaw = this.list()
      .filter((v) => tier === null || v.tier === null || v.tier === tier)
      .reduce((s, v) => s + Math.max(0, v.capacity - this.usageOf(v.name).bytes) / efficiency(parsePolicy(v.policy)), 0);
    return Math.max(0, Math.floor((usable * Math.max(0, raw - reservedRaw)) / raw));
  }
}
