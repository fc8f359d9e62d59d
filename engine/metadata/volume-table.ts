import type Database from 'better-sqlite3';

/** A volume's row as stored: a top-level directory with a capacity, a policy and optionally a tier. */
export interface VolumeRecord {
  name: string;
  ino: number;
  capacity: number;
  policy: string;
  tier: string | null;
  ephemeral: boolean;
  createdAt: string;
  context: Record<string, string>;
  /** Files, directories, links and nodes the volume may hold (its root included); null: none recorded (an older pool). */
  inodeLimit: number | null;
}

interface DbRow {
  name: string;
  ino: number;
  capacity: number;
  policy: string;
  tier: string | null;
  ephemeral: number;
  created_at: number;
  context: string;
  inode_limit: number | null;
}

const toRecord = (r: DbRow): VolumeRecord => ({
  name: r.name,
  ino: r.ino,
  capacity: r.capacity,
  policy: r.policy,
  tier: r.tier,
  ephemeral: r.ephemeral === 1,
  createdAt: new Date(r.created_at).toISOString(),
  context: JSON.parse(r.context) as Record<string, string>,
  inodeLimit: r.inode_limit,
});

/** The `volumes` table. */
export class VolumeTable {
  private readonly s;

  constructor(db: Database.Database) {
    this.s = {
      all: db.prepare<[], DbRow>('SELECT * FROM volumes ORDER BY name'),
      insert: db.prepare(
        'INSERT INTO volumes (name, ino, capacity, policy, tier, ephemeral, created_at, context, inode_limit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      remove: db.prepare('DELETE FROM volumes WHERE name = ?'),
      setCapacity: db.prepare('UPDATE volumes SET capacity = ? WHERE name = ?'),
      setPolicy: db.prepare('UPDATE volumes SET policy = ? WHERE name = ?'),
      setInodeLimit: db.prepare('UPDATE volumes SET inode_limit = ? WHERE name = ?'),
      clearInodeLimits: db.prepare('UPDATE volumes SET inode_limit = NULL'),
    };
  }

  all(): VolumeRecord[] {
    return this.s.all.all().map(toRecord);
  }

  insert(v: Omit<VolumeRecord, 'createdAt'>, now: number): void {
    this.s.insert.run(v.name, v.ino, v.capacity, v.policy, v.tier, v.ephemeral ? 1 : 0, now, JSON.stringify(v.context), v.inodeLimit);
  }

  remove(name: string): void {
    this.s.remove.run(name);
  }

  setCapacity(name: string, capacity: number): void {
    this.s.setCapacity.run(capacity, name);
  }

  setPolicy(name: string, policy: string): void {
    this.s.setPolicy.run(policy, name);
  }

  setInodeLimit(name: string, limit: number): void {
    this.s.setInodeLimit.run(limit, name);
  }

  /** As a version before inode limits left every row (tests of the migration). */
  clearInodeLimits(): void {
    this.s.clearInodeLimits.run();
  }
}
