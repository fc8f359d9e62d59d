import type Database from 'better-sqlite3';

/** A volume bound at a target path (a pod's directory) by this pool's daemon. */
export interface PublicationRecord {
  target: string;
  volume: string;
  readonly: boolean;
  flags: string[];
  /** The directory the target was checked under; null in rows of older versions. */
  root: string | null;
}

interface DbRow {
  target: string;
  volume: string;
  readonly: number;
  flags: string;
  root: string | null;
}

/** The `publications` table: what the daemon re-binds after a restart. */
export class PublicationTable {
  private readonly s;

  constructor(db: Database.Database) {
    this.s = {
      all: db.prepare<[], DbRow>('SELECT target, volume, readonly, flags, root FROM publications ORDER BY target'),
      put: db.prepare('INSERT OR REPLACE INTO publications (target, volume, readonly, flags, at, root) VALUES (?, ?, ?, ?, ?, ?)'),
      remove: db.prepare('DELETE FROM publications WHERE target = ?'),
    };
  }

  all(): PublicationRecord[] {
    return this.s.all.all().map((r) => ({
      target: r.target,
      volume: r.volume,
      readonly: r.readonly === 1,
      flags: JSON.parse(r.flags) as string[],
      root: r.root,
    }));
  }

  put(p: PublicationRecord & { root: string }, now: number): void {
    this.s.put.run(p.target, p.volume, p.readonly ? 1 : 0, JSON.stringify(p.flags), now, p.root);
  }

  remove(target: string): void {
    this.s.remove.run(target);
  }
}
