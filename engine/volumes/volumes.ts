import type { FileSystem } from '../fs/filesystem.js';
import { domainCount, rawSpace, usableSpace } from '../pool/capacity.js';
import type { Pool } from '../pool/pool.js';
import { efficiency, formatPolicy, fragmentCount, parsePolicy } from '../redundancy/policy.js';
import { fsError } from '../util/errors.js';
import { volumeNameProblem } from './names.js';

export interface VolumeRow {
  name: string; ino: number; capacity: number; policy: string; tier: string | null; ephemeral: boolean; createdAt: string;
  context: Record<string, string>;
  /** Files, directories, links and nodes the volume may hold (its root included). */
  inodeLimit: number;
}

/** Bytes of capacity per inode a volume gets when none is asked for: ext4's default ratio. */
const BYTES_PER_INODE = 16 * 1024;
/** ... but never fewer than this, so a small volume still holds a source tree. */
const MIN_INODES = 4096;
/** Most inodes a volume may ask for: each costs a metadata row on the node's own disk. */
export const MAX_INODES = 2 ** 32;

export function defaultInodeLimit(capacity: number): number {
  return Math.min(MAX_INODES, Math.max(MIN_INODES, Math.floor(capacity / BYTES_PER_INODE)));
}

/**
 * Mode of a volume's root: every uid of the pod may write there (pods without fsGroup included, as on
 * local-path volumes). What a process in the volume may not change is the volume's policy (see
 * FileSystem.setxattr); the directory is the tenant's own.
 */
const VOLUME_ROOT_MODE = 0o40777;

export class VolumeError extends Error {
  constructor(readonly code: 'INVALID' | 'NOT_FOUND' | 'EXISTS' | 'EXHAUSTED' | 'BUSY', message: string) {
    super(message);
    this.name = 'VolumeError';
  }
}

interface Usage { bytes: number; inodes: number; dirty: boolean }

interface DbRow { name: string; ino: number; capacity: number; policy: string; tier: string | null; ephemeral: number; created_at: number; context: string; inode_limit: number | null }

const toRow = (r: DbRow): VolumeRow => ({
  name: r.name, ino: r.ino, capacity: r.capacity, policy: r.policy, tier: r.tier, ephemeral: r.ephemeral === 1,
  createdAt: new Date(r.created_at).toISOString(), context: JSON.parse(r.context) as Record<string, string>,
  inodeLimit: r.inode_limit ?? defaultInodeLimit(r.capacity),
});

/**
 * Volumes: top-level directories of a pool, each with a capacity (a quota the engine enforces on
 * apparent file size), a redundancy policy and optionally a tier. Usage is counted from the metadata
 * when first needed and then kept up to date by the write path.
 */
export class Volumes {
  private readonly usage = new Map<string, Usage>();
  private rows = new Map<string, VolumeRow>();

  constructor(private readonly pool: Pool, private readonly fs: FileSystem) {
    this.grandfatherInodeLimits();
    this.reload();
  }

  /**
   * Volumes made before inode limits existed must not find themselves past one: those that hold more
   * than half of their default get twice what they hold (once per pool).
   */
  private grandfatherInodeLimits(): void {
    const store = this.pool.store;
    if (store.getMeta('inode_limits') === '1') return;
    store.tx(() => {
      const rows = store.db.prepare('SELECT name, ino, capacity FROM volumes WHERE inode_limit IS NULL').all() as { name: string; ino: number; capacity: number }[];
      for (const r of rows) {
        const held = store.subtreeUsage(r.ino).inodes;
        if (held * 2 > defaultInodeLimit(r.capacity)) store.db.prepare('UPDATE volumes SET inode_limit = ? WHERE name = ?').run(Math.min(MAX_INODES, held * 2), r.name);
      }
      store.setMeta('inode_limits', '1');
    });
  }

  private reload(): void {
    const rows = this.pool.store.db.prepare('SELECT * FROM volumes ORDER BY name').all() as DbRow[];
    this.rows = new Map(rows.map((r) => [r.name, toRow(r)]));
  }

  list(): VolumeRow[] {
    return [...this.rows.values()];
  }

  get(name: string): VolumeRow | undefined {
    return this.rows.get(name);
  }

  /** The volume a pool path lies in (its first component), if that is a volume. */
  of(path: string): VolumeRow | undefined {
    const first = path.split('/').find((c) => c !== '');
    return first === undefined ? undefined : this.rows.get(first);
  }

  create(spec: { name: string; capacity: number; policy?: string; tier?: string | null; ephemeral?: boolean; context?: Record<string, string>; inodeLimit?: number }): { volume: VolumeRow; created: boolean } {
    const problem = volumeNameProblem(spec.name);
    if (problem) throw new VolumeError('INVALID', `volume name '${spec.name.slice(0, 64)}' ${problem}`);
    if (!Number.isSafeInteger(spec.capacity) || spec.capacity < 0) throw new VolumeError('INVALID', `capacity ${spec.capacity} is not a byte count`);
    if (spec.inodeLimit !== undefined && (!Number.isSafeInteger(spec.inodeLimit) || spec.inodeLimit < 1 || spec.inodeLimit > MAX_INODES)) {
      throw new VolumeError('INVALID', `inode limit ${spec.inodeLimit} is not a whole number from 1 to ${MAX_INODES}`);
    }
    const policy = spec.policy ? formatPolicy(parsePolicy(spec.policy)) : formatPolicy(this.pool.settings.defaultPolicy);
    const tier = spec.tier ?? null;
    const existing = this.rows.get(spec.name);
    if (existing) {
      if (existing.capacity !== spec.capacity || existing.policy !== policy || existing.tier !== tier || (spec.inodeLimit !== undefined && spec.inodeLimit !== existing.inodeLimit)) {
        throw new VolumeError('EXISTS', `volume ${spec.name} exists with capacity ${existing.capacity}, policy ${existing.policy}, tier ${existing.tier ?? 'any'}`);
      }
      return { volume: existing, created: false };
    }
    const writable = this.pool.disks.writable().filter((d) => tier === null || d.tier === tier);
    const needed = fragmentCount(parsePolicy(policy));
    if (writable.length < needed) {
      throw new VolumeError('EXHAUSTED', `policy ${policy} needs ${needed} healthy disks${tier ? ` in tier ${tier}` : ''}; pool ${this.pool.name} has ${writable.length}`);
    }
    const domains = domainCount(writable);
    if (domains < needed && !this.pool.config.reliability.allow_shared_failure_domains) {
      throw new VolumeError('EXHAUSTED', `policy ${policy} needs ${needed} failure domains${tier ? ` in tier ${tier}` : ''}; the healthy disks of pool ${this.pool.name} are in ${domains}`);
    }
    if (spec.capacity > this.available(policy, tier)) {
      throw new VolumeError('EXHAUSTED', `pool ${this.pool.name} cannot hold ${spec.capacity} bytes under ${policy}: ${this.available(policy, tier)} available`);
    }
    const dir = `/${spec.name}`;
    if (this.exists(dir)) throw new VolumeError('EXISTS', `pool ${this.pool.name} already has a directory ${dir} that is not a volume`);
    this.fs.mkdir(dir, VOLUME_ROOT_MODE);
    this.fs.ns.setPolicy(dir, policy);
    const ino = this.fs.ns.resolve(dir);
    this.pool.store.db.prepare('INSERT INTO volumes (name, ino, capacity, policy, tier, ephemeral, created_at, context, inode_limit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      spec.name, ino, spec.capacity, policy, tier, spec.ephemeral ? 1 : 0, Date.now(), JSON.stringify(spec.context ?? {}), spec.inodeLimit ?? null,
    );
    this.reload();
    // Counted from the metadata when first needed: its root's policy attribute is charged too.
    this.usage.set(spec.name, { bytes: 0, inodes: 1, dirty: true });
    return { volume: this.rows.get(spec.name) as VolumeRow, created: true };
  }

  /** Removes a volume and every file in it; false when there was none. */
  delete(name: string): boolean {
    const v = this.rows.get(name);
    if (!v) return false;
    this.removeTree(`/${name}`);
    this.pool.store.db.prepare('DELETE FROM volumes WHERE name = ?').run(name);
    this.usage.delete(name);
    this.reload();
    void this.pool.reapGarbage();
    return true;
  }

  private removeTree(dir: string): void {
    if (!this.exists(dir)) return;
    for (const entry of this.fs.readdir(dir)) {
      if (entry === '.' || entry === '..') continue;
      const p = `${dir}/${entry}`;
      if ((this.fs.getattr(p).mode & 0o170000) === 0o040000) this.removeTree(p);
      else this.fs.unlink(p);
    }
    this.fs.rmdir(dir);
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
    const v = this.rows.get(name);
    if (!v) throw new VolumeError('NOT_FOUND', `no volume ${name} in pool ${this.pool.name}`);
    if (capacity > v.capacity && capacity - v.capacity > this.available(v.policy, v.tier)) {
      throw new VolumeError('EXHAUSTED', `pool ${this.pool.name} cannot grow ${name} to ${capacity} bytes: ${this.available(v.policy, v.tier)} available`);
    }
    if (capacity > v.capacity) this.pool.store.db.prepare('UPDATE volumes SET capacity = ? WHERE name = ?').run(capacity, name);
    this.reload();
    return this.rows.get(name) as VolumeRow;
  }

  /** The administrator changes a volume's policy (the CLI's set-policy): the row and the directory agree. */
  setPolicy(name: string, policy: string): void {
    const v = this.rows.get(name);
    if (!v) throw new VolumeError('NOT_FOUND', `no volume ${name} in pool ${this.pool.name}`);
    this.pool.store.tx(() => {
      this.fs.ns.setPolicy(`/${name}`, policy);
      this.pool.store.db.prepare('UPDATE volumes SET policy = ? WHERE name = ?').run(policy, name);
    });
    this.reload();
  }

  /**
   * Usable bytes for a new volume: free space of healthy disks (of the tier) under the policy, each
   * filesystem counted once and fragments spread over failure domains, less the share of the raw free
   * space that volumes have reserved and not yet used.
   */
  available(policyText: string, tier: string | null): number {
    const policy = parsePolicy(policyText);
    const disks = this.pool.disks.writable().filter((d) => tier === null || d.tier === tier);
    const usable = usableSpace(disks, policy, this.pool.config.reliability.allow_shared_failure_domains).free;
    const raw = rawSpace(disks).free;
    if (raw <= 0) return 0;
    // What volumes may still write, in raw bytes, each under its own policy's overhead (a volume of
    // replication:2 holds twice its bytes on the disks); volumes of another tier do not land here.
    const reservedRaw = this.list()
      .filter((v) => tier === null || v.tier === null || v.tier === tier)
      .reduce((s, v) => s + Math.max(0, v.capacity - this.usageOf(v.name).bytes) / efficiency(parsePolicy(v.policy)), 0);
    return Math.max(0, Math.floor((usable * Math.max(0, raw - reservedRaw)) / raw));
  }

  /** Bytes (apparent file sizes and extended attributes) and inodes in a volume. */
  usageOf(name: string): { bytes: number; inodes: number } {
    let u = this.usage.get(name);
    if (!u || u.dirty) {
      const v = this.rows.get(name);
      if (!v) return { bytes: 0, inodes: 0 };
      const tree = this.pool.store.subtreeUsage(v.ino);
      const orphans = this.fs.openOrphans(name);
      const r = { bytes: tree.bytes + orphans.bytes, inodes: tree.inodes + orphans.inodes };
      // Files open for writing may hold growth not yet flushed to metadata.
      u = { bytes: Math.max(r.bytes, u?.dirty ? 0 : (u?.bytes ?? 0)), inodes: r.inodes, dirty: false };
      this.usage.set(name, u);
    }
    return { bytes: u.bytes, inodes: u.inodes };
  }

  /** Called before a file in volume `name` grows by `bytes`: refuses with EDQUOT past the capacity. */
  charge(name: string, bytes: number): void {
    const v = this.rows.get(name);
    if (!v || bytes <= 0) return;
    const used = this.usageOf(name).bytes;
    if (used + bytes > v.capacity) {
      throw fsError('EDQUOT', `volume ${name} holds ${used} of ${v.capacity} bytes; ${bytes} more would pass its capacity`);
    }
    (this.usage.get(name) as Usage).bytes = used + bytes;
  }

  /** Called before an inode is made in volume `name`: refuses with EDQUOT at its inode limit. */
  chargeInode(name: string): void {
    const v = this.rows.get(name);
    if (!v) return;
    const used = this.usageOf(name).inodes;
    if (used + 1 > v.inodeLimit) throw fsError('EDQUOT', `volume ${name} holds ${used} of its ${v.inodeLimit} inodes`);
    (this.usage.get(name) as Usage).inodes = used + 1;
  }

  /** Something shrank or moved (truncate, unlink, rename): count again when next needed. */
  recount(name: string): void {
    const u = this.usage.get(name);
    if (u) u.dirty = true;
  }
}
