import Database from 'better-sqlite3';
import { decodeName, encodeName, hasEscapedBytes, nameByteLength } from '../util/byte-names.js';
import { ADDED_COLUMNS, SCHEMA, SCHEMA_VERSION } from './schema.js';
import { PublicationTable } from './publication-table.js';
import { VolumeTable } from './volume-table.js';

export interface InodeRow {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  atime: number;
  mtime: number;
  ctime: number;
  /** A symbolic link's target (engine name string: see util/byte-names.ts). */
  target: string | null;
  policy: string | null;
  /** A device node's device number (st_rdev); 0 for every other file. */
  rdev: number;
  /**
   * Nanoseconds below the millisecond of atime and mtime (0-999999), so times set with utimensat
   * come back exact (rsync and tar compare them); `atime` and `mtime` are whole milliseconds then.
   */
  atime_ns: number;
  mtime_ns: number;
}
export interface DiskRow {
  id: string;
  path: string;
  tier: string;
  capacity: number | null;
  health: string;
  health_reason: string;
  health_changed_at: number;
  used: number;
  read_errors: number;
  write_errors: number;
  checksum_errors: number;
  added_at: number;
  /** The administrator's name for the disk's failure domain, or null (detected). */
  failure_domain: string | null;
}
export interface ExtentRow {
  ino: number;
  idx: number;
  eid: number;
  policy: string;
  length: number;
  encoded_length: number;
  checksum_alg: string;
}
export interface FragmentRow {
  eid: number;
  slot: number;
  disk: string;
  size: number;
  checksum: string;
}
export interface GarbageRow {
  disk: string;
  eid: number;
  slot: number;
  size: number;
}
export interface DirentRow {
  parent: number;
  name: string;
  ino: number;
}
/** A directory entry with its inode's mode (what readdir reports as the entry's type). */
export interface ChildRow {
  name: string;
  ino: number;
  mode: number;
}

/**
 * Names and symlink targets are bytes. A name whose bytes are valid UTF-8 (nearly all, and every row
 * an older version wrote) is stored as TEXT; any other as a BLOB of its bytes. The storage type is a
 * function of the bytes, so a lookup binds the same type the insert did and finds the row.
 */
type StoredName = string | Buffer;
function storedName(name: string): StoredName {
  return hasEscapedBytes(name) ? encodeName(name) : name;
}
function loadedName(v: StoredName): string {
  return typeof v === 'string' ? v : decodeName(v);
}
type RawInode = Omit<InodeRow, 'target' | 'rdev' | 'atime_ns' | 'mtime_ns'> & {
  target: StoredName | null;
  rdev: number | null;
  atime_ns: number | null;
  mtime_ns: number | null;
};
function loadedInode(r: RawInode | undefined): InodeRow | undefined {
  if (!r) return undefined;
  return {
    ...r,
    target: r.target === null ? null : loadedName(r.target),
    rdev: r.rdev ?? 0,
    atime_ns: r.atime_ns ?? 0,
    mtime_ns: r.mtime_ns ?? 0,
  };
}
function loadedDirent(r: { parent: number; name: StoredName; ino: number }): DirentRow {
  return { parent: r.parent, name: loadedName(r.name), ino: r.ino };
}
export interface DiskEventRow {
  id: number;
  disk: string;
  at: number;
  from_state: string | null;
  to_state: string;
  reason: string;
}

export const ROOT_INO = 1;
/**
 * What an extended attribute's row costs the metadata beyond its name and value (key, b-tree cell,
 * page slack), charged to its volume so that many small attributes are not free.
 */
export const XATTR_ROW_BYTES = 64;
export function xattrCharge(name: string, valueLength: number): number {
  return nameByteLength(name) + valueLength + XATTR_ROW_BYTES;
}
/**
 * Extents whose rows (and fragment rows) a sequential reader's cache miss loads at once: measured
 * here, 32 rows in one query take 56 µs, 12-15 single-row lookups.
 */
export const EXTENT_LOOKAHEAD = 32;

/**
 * The pool's metadata in SQLite (better-sqlite3 v12), WAL mode. Every namespace change and every
 * extent commit is one transaction, so a crash leaves either the old or the new state. Commits use
 * synchronous=NORMAL (durable against a process kill at once, against power loss at the next
 * checkpoint); fsync() commits once under synchronous=FULL, which syncs the WAL.
 */
export class MetadataStore {
  readonly db: Database.Database;
  readonly volumes: VolumeTable;
  readonly publications: PublicationTable;
  private readonly s;

  constructor(
    readonly file: string,
    options: { create?: boolean } = {},
  ) {
    this.db = new Database(file, { fileMustExist: !options.create });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    for (const c of ADDED_COLUMNS) {
      const have = (this.db.prepare(`PRAGMA table_info(${c.table})`).all() as { name: string }[]).some((r) => r.name === c.column);
      if (!have) this.db.exec(`ALTER TABLE ${c.table} ADD COLUMN ${c.column} ${c.type}`);
    }
    this.runInTx = this.db.transaction((fn: () => unknown) => fn());
    this.volumes = new VolumeTable(this.db);
    this.publications = new PublicationTable(this.db);
    const d = this.db;
    this.s = {
      getMeta: d.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: d.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      inode: d.prepare<[number], RawInode>('SELECT * FROM inodes WHERE ino = ?'),
      lookup: d.prepare<[number, StoredName], { ino: number }>('SELECT ino FROM dirents WHERE parent = ? AND name = ?'),
      children: d.prepare<[number], { parent: number; name: StoredName; ino: number }>(
        'SELECT * FROM dirents WHERE parent = ? ORDER BY name',
      ),
      childEntries: d.prepare<[number], { name: StoredName; ino: number; mode: number }>(
        'SELECT d.name AS name, d.ino AS ino, i.mode AS mode FROM dirents d JOIN inodes i ON i.ino = d.ino WHERE d.parent = ? ORDER BY d.name',
      ),
      childCount: d.prepare<[number], { n: number }>('SELECT count(*) AS n FROM dirents WHERE parent = ?'),
      parentsOf: d.prepare<[number], { parent: number; name: StoredName; ino: number }>('SELECT * FROM dirents WHERE ino = ?'),
      insertInode: d.prepare(
        'INSERT INTO inodes (mode, uid, gid, size, nlink, atime, mtime, ctime, target, policy, rdev, atime_ns, mtime_ns) VALUES (@mode, @uid, @gid, @size, @nlink, @atime, @mtime, @ctime, @target, @policy, @rdev, @atime_ns, @mtime_ns)',
      ),
      insertInodeWithIno: d.prepare(
        'INSERT INTO inodes (ino, mode, uid, gid, size, nlink, atime, mtime, ctime, target, policy, rdev, atime_ns, mtime_ns) VALUES (@ino, @mode, @uid, @gid, @size, @nlink, @atime, @mtime, @ctime, @target, @policy, @rdev, 0, 0)',
      ),
      insertDirent: d.prepare('INSERT INTO dirents (parent, name, ino) VALUES (?, ?, ?)'),
      deleteDirent: d.prepare('DELETE FROM dirents WHERE parent = ? AND name = ?'),
      deleteInode: d.prepare('DELETE FROM inodes WHERE ino = ?'),
      deleteXattrs: d.prepare('DELETE FROM xattrs WHERE ino = ?'),
      setNlink: d.prepare('UPDATE inodes SET nlink = ?, ctime = ? WHERE ino = ?'),
      setMode: d.prepare('UPDATE inodes SET mode = ?, ctime = ? WHERE ino = ?'),
      setOwner: d.prepare('UPDATE inodes SET uid = ?, gid = ?, ctime = ? WHERE ino = ?'),
      setTimes: d.prepare('UPDATE inodes SET atime = ?, mtime = ?, ctime = ?, atime_ns = ?, mtime_ns = ? WHERE ino = ?'),
      setCtime: d.prepare('UPDATE inodes SET ctime = ? WHERE ino = ?'),
      // A new modification time drops the old one's nanoseconds; the same millisecond again (an extent
      // committed with the time utimensat set) keeps them.
      setSize: d.prepare(
        'UPDATE inodes SET size = @size, mtime = @mtime, ctime = @ctime, mtime_ns = CASE WHEN mtime = @mtime THEN mtime_ns ELSE 0 END WHERE ino = @ino',
      ),
      growSize: d.prepare(
        'UPDATE inodes SET size = max(size, @size), mtime = @mtime, ctime = @ctime, mtime_ns = CASE WHEN mtime = @mtime THEN mtime_ns ELSE 0 END WHERE ino = @ino',
      ),
      touchDir: d.prepare('UPDATE inodes SET mtime = ?, ctime = ?, mtime_ns = 0 WHERE ino = ?'),
      setPolicy: d.prepare('UPDATE inodes SET policy = ? WHERE ino = ?'),
      extent: d.prepare<[number, number], ExtentRow>('SELECT * FROM extents WHERE ino = ? AND idx = ?'),
      extentsOf: d.prepare<[number], ExtentRow>('SELECT * FROM extents WHERE ino = ? ORDER BY idx'),
      extentRange: d.prepare<[number, number, number], ExtentRow>(
        'SELECT * FROM extents WHERE ino = ? AND idx >= ? AND idx < ? ORDER BY idx',
      ),
      fragmentRange: d.prepare<[number, number, number], FragmentRow>(
        'SELECT f.* FROM extents e JOIN fragments f ON f.eid = e.eid WHERE e.ino = ? AND e.idx >= ? AND e.idx < ? ORDER BY f.eid, f.slot',
      ),
      extentsFrom: d.prepare<[number, number], ExtentRow>('SELECT * FROM extents WHERE ino = ? AND idx >= ?'),
      upsertExtent: d.prepare(
        'INSERT INTO extents (ino, idx, eid, policy, length, encoded_length, checksum_alg) VALUES (@ino, @idx, @eid, @policy, @length, @encoded_length, @checksum_alg) ON CONFLICT(ino, idx) DO UPDATE SET eid = excluded.eid, policy = excluded.policy, length = excluded.length, encoded_length = excluded.encoded_length, checksum_alg = excluded.checksum_alg',
      ),
      deleteExtent: d.prepare('DELETE FROM extents WHERE ino = ? AND idx = ?'),
      setExtentLength: d.prepare('UPDATE extents SET length = ? WHERE ino = ? AND idx = ?'),
      fragments: d.prepare<[number], FragmentRow>('SELECT * FROM fragments WHERE eid = ? ORDER BY slot'),
      insertFragment: d.prepare('INSERT INTO fragments (eid, slot, disk, size, checksum) VALUES (@eid, @slot, @disk, @size, @checksum)'),
      deleteFragments: d.prepare('DELETE FROM fragments WHERE eid = ?'),
      deleteFragmentErrors: d.prepare('DELETE FROM fragment_errors WHERE eid = ?'),
      insertGarbage: d.prepare('INSERT OR IGNORE INTO garbage (disk, eid, slot, size) VALUES (@disk, @eid, @slot, @size)'),
      garbage: d.prepare<[number], GarbageRow>('SELECT * FROM garbage LIMIT ?'),
      deleteGarbage: d.prepare('DELETE FROM garbage WHERE disk = ? AND eid = ? AND slot = ?'),
      addUsed: d.prepare('UPDATE disks SET used = max(0, used + ?) WHERE id = ?'),
      insertIntent: d.prepare('INSERT INTO write_intents (created_at, placement) VALUES (?, ?)'),
      deleteIntent: d.prepare('DELETE FROM write_intents WHERE eid = ?'),
      intents: d.prepare<[], { eid: number; created_at: number; placement: string }>('SELECT * FROM write_intents'),
      getXattr: d.prepare<[number, StoredName], { value: Buffer }>('SELECT value FROM xattrs WHERE ino = ? AND name = ?'),
      setXattr: d.prepare(
        'INSERT INTO xattrs (ino, name, value) VALUES (?, ?, ?) ON CONFLICT(ino, name) DO UPDATE SET value = excluded.value',
      ),
      listXattrs: d.prepare<[number], { name: StoredName }>('SELECT name FROM xattrs WHERE ino = ? ORDER BY name'),
      removeXattr: d.prepare('DELETE FROM xattrs WHERE ino = ? AND name = ?'),
      disks: d.prepare<[], DiskRow>('SELECT * FROM disks ORDER BY added_at, id'),
      insertDisk: d.prepare(
        'INSERT INTO disks (id, path, tier, capacity, health, health_changed_at, added_at, failure_domain) VALUES (@id, @path, @tier, @capacity, @health, @at, @at, @failureDomain)',
      ),
      setDiskPath: d.prepare('UPDATE disks SET path = ? WHERE id = ?'),
      setDiskHealth: d.prepare('UPDATE disks SET health = ?, health_reason = ?, health_changed_at = ? WHERE id = ?'),
      insertDiskEvent: d.prepare('INSERT INTO disk_events (disk, at, from_state, to_state, reason) VALUES (?, ?, ?, ?, ?)'),
      diskEvents: d.prepare<[string, number], DiskEventRow>('SELECT * FROM disk_events WHERE disk = ? ORDER BY id DESC LIMIT ?'),
      bumpDiskErrors: d.prepare(
        'UPDATE disks SET read_errors = read_errors + @read, write_errors = write_errors + @write, checksum_errors = checksum_errors + @checksum WHERE id = @id',
      ),
      recordFragmentError: d.prepare(
        'INSERT INTO fragment_errors (eid, slot, disk, kind, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(eid, slot) DO UPDATE SET kind = excluded.kind, at = excluded.at',
      ),
      orphanInodes: d.prepare<[], { ino: number }>('SELECT ino FROM inodes WHERE nlink <= 0'),
    };
  }

  static initialise(store: MetadataStore, meta: Record<string, string>, now: number): void {
    store.tx(() => {
      store.setMeta('schema_version', String(SCHEMA_VERSION));
      for (const [k, v] of Object.entries(meta)) store.setMeta(k, v);
      store.s.insertInodeWithIno.run({
        ino: 1,
        mode: 0o040755,
        uid: 0,
        gid: 0,
        size: 0,
        nlink: 2,
        atime: now,
        mtime: now,
        ctime: now,
        target: null,
        policy: null,
        rdev: 0,
      });
    });
  }

  /**
   * Runs fn in a transaction (a savepoint when nested). One wrapper serves every call: building one
   * per call (db.transaction(fn)) defines four functions and their properties, ~3 % of the event
   * loop's time in a 1 GiB write.
   */
  tx<T>(fn: () => T): T {
    return this.runInTx(fn) as T;
  }
  private readonly runInTx: (fn: () => unknown) => unknown;

  getMeta(key: string): string | undefined {
    return this.s.getMeta.get(key)?.value;
  }
  setMeta(key: string, value: string): void {
    this.s.setMeta.run(key, value);
  }

  inode(ino: number): InodeRow | undefined {
    return loadedInode(this.s.inode.get(ino));
  }
  lookup(parent: number, name: string): number | undefined {
    return this.s.lookup.get(parent, storedName(name))?.ino;
  }
  children(parent: number): DirentRow[] {
    return this.s.children.all(parent).map(loadedDirent);
  }
  /** The entries of directory `parent` with their inodes' modes, in one query. */
  childEntries(parent: number): ChildRow[] {
    return this.s.childEntries.all(parent).map((r) => ({ name: loadedName(r.name), ino: r.ino, mode: r.mode }));
  }
  childCount(parent: number): number {
    return this.s.childCount.get(parent)?.n ?? 0;
  }
  parentsOf(ino: number): DirentRow[] {
    return this.s.parentsOf.all(ino).map(loadedDirent);
  }
  insertInode(row: Omit<InodeRow, 'ino'>): number {
    return Number(this.s.insertInode.run({ ...row, target: row.target === null ? null : storedName(row.target) }).lastInsertRowid);
  }
  insertDirent(parent: number, name: string, ino: number): void {
    this.s.insertDirent.run(parent, storedName(name), ino);
  }
  deleteDirent(parent: number, name: string): void {
    this.s.deleteDirent.run(parent, storedName(name));
  }
  deleteInode(ino: number): void {
    this.s.deleteInode.run(ino);
    this.s.deleteXattrs.run(ino);
  }
  setNlink(ino: number, nlink: number, now: number): void {
    this.s.setNlink.run(nlink, now, ino);
  }
  setMode(ino: number, mode: number, now: number): void {
    this.s.setMode.run(mode, now, ino);
  }
  setOwner(ino: number, uid: number, gid: number, now: number): void {
    this.s.setOwner.run(uid, gid, now, ino);
  }
  /** Access and modification times in milliseconds, with the nanoseconds below each millisecond. */
  setTimes(ino: number, atime: number, mtime: number, now: number, atimeNs = 0, mtimeNs = 0): void {
    this.s.setTimes.run(atime, mtime, now, atimeNs, mtimeNs, ino);
  }
  setCtime(ino: number, now: number): void {
    this.s.setCtime.run(now, ino);
  }
  setSize(ino: number, size: number, now: number): void {
    this.s.setSize.run({ size, mtime: now, ctime: now, ino });
  }
  growSize(ino: number, size: number, now: number): void {
    this.s.growSize.run({ size, mtime: now, ctime: now, ino });
  }
  touchDir(ino: number, now: number): void {
    this.s.touchDir.run(now, now, ino);
  }
  setPolicy(ino: number, policy: string | null): void {
    this.s.setPolicy.run(policy, ino);
  }

  /**
   * Hot on the read path (one lookup per FUSE read), so served from a map cleared on every extent
   * change. A sequential reader asks with `ahead` > 1: a miss then loads that many extents of the
   * file in one query (the writer's lookups, between commits that clear the map, stay single rows).
   */
  private readonly extentCache = new Map<string, ExtentRow | undefined>();
  private extentsChanged(): void {
    this.extentCache.clear();
  }

  extent(ino: number, idx: number, ahead = 1): ExtentRow | undefined {
    const key = `${ino}:${idx}`;
    if (this.extentCache.has(key)) return this.extentCache.get(key);
    if (this.extentCache.size > 4096) this.extentCache.clear();
    const rows = ahead > 1 ? this.s.extentRange.all(ino, idx, idx + ahead) : [this.s.extent.get(ino, idx)];
    for (let i = idx, r = 0; i < idx + ahead; i++) {
      const row = rows[r]?.idx === i ? rows[r++] : undefined;
      this.extentCache.set(`${ino}:${i}`, row);
    }
    return this.extentCache.get(key);
  }
  extentsOf(ino: number): ExtentRow[] {
    return this.s.extentsOf.all(ino);
  }
  /** Extents after (ino, idx) in key order: callers page through the pool without holding a cursor across awaits. */
  extentsAfter(ino: number, idx: number, limit: number): ExtentRow[] {
    return this.db
      .prepare<[number, number, number, number], ExtentRow>(
        'SELECT * FROM extents WHERE ino > ? OR (ino = ? AND idx > ?) ORDER BY ino, idx LIMIT ?',
      )
      .all(ino, ino, idx, limit);
  }

  *allExtents(pageSize = 512): Generator<ExtentRow> {
    yield* this.allExtentsAfter(-1, -1, pageSize);
  }

  *allExtentsAfter(startIno: number, startIdx: number, pageSize = 512): Generator<ExtentRow> {
    let ino = startIno;
    let idx = startIdx;
    for (;;) {
      const page = this.extentsAfter(ino, idx, pageSize);
      if (page.length === 0) return;
      yield* page;
      ino = page[page.length - 1].ino;
      idx = page[page.length - 1].idx;
    }
  }
  fragments(eid: number): FragmentRow[] {
    return this.s.fragments.all(eid);
  }

  /**
   * The read path's copy of fragments(): one query per extent read cost the daemon ~30 ms of a cold
   * 1 GiB read, so a miss loads the fragments of the next EXTENT_LOOKAHEAD extents of the file in one
   * query. An extent's fragment rows change only when the extent is discarded or a fragment
   * relocated, and both drop the entry.
   */
  private readonly fragmentCache = new Map<number, readonly FragmentRow[]>();
  fragmentsForRead(ext: ExtentRow): readonly FragmentRow[] {
    const cached = this.fragmentCache.get(ext.eid);
    if (cached) return cached;
    if (this.fragmentCache.size > 4096) this.fragmentCache.clear();
    let group: FragmentRow[] = [];
    for (const f of this.s.fragmentRange.all(ext.ino, ext.idx, ext.idx + EXTENT_LOOKAHEAD)) {
      if (group.length > 0 && group[0].eid !== f.eid) {
        this.fragmentCache.set(group[0].eid, group);
        group = [];
      }
      group.push(f);
    }
    if (group.length > 0) this.fragmentCache.set(group[0].eid, group);
    let rows = this.fragmentCache.get(ext.eid);
    if (!rows) {
      // The row was replaced since the caller looked it up: answer for the eid it asked about.
      rows = this.s.fragments.all(ext.eid);
      this.fragmentCache.set(ext.eid, rows);
    }
    return rows;
  }

  /** Allocates a fresh extent id and records where its fragments are about to be written. */
  beginWrite(placement: { slot: number; disk: string }[], now: number): number {
    return Number(this.s.insertIntent.run(now, JSON.stringify(placement)).lastInsertRowid);
  }
  intents(): { eid: number; created_at: number; placement: { slot: number; disk: string }[] }[] {
    return this.s.intents.all().map((r) => ({ ...r, placement: JSON.parse(r.placement) as { slot: number; disk: string }[] }));
  }
  dropIntent(eid: number): void {
    this.s.deleteIntent.run(eid);
  }

  /** Set whenever fragments are queued for deletion; the reaper skips its query while it is false. */
  garbagePending = true;

  /** Moves an extent's fragments to the garbage list (reclaimed after the transaction commits). */
  private discardExtent(eid: number): void {
    this.garbagePending = true;
    this.fragmentCache.delete(eid);
    for (const f of this.s.fragments.all(eid)) this.s.insertGarbage.run({ disk: f.disk, eid, slot: f.slot, size: f.size });
    this.s.deleteFragments.run(eid);
    this.s.deleteFragmentErrors.run(eid);
  }

  /**
   * Makes a freshly written extent current in one transaction: the old version's fragments become
   * garbage, the new fragments are recorded, the write intent is closed and the file grows to cover it.
   * Returns false (and discards the new fragments) when the file no longer exists.
   * `mtime` is the file's modification time as the writer last set it (a write or a later utimens),
   * not the commit time: `cp -p` sets the times before its data reaches the disks.
   */
  commitExtent(extent: ExtentRow, fragments: FragmentRow[], fileSize: number, mtime: number, ctime: number): boolean {
    this.extentsChanged();
    return this.tx(() => {
      this.s.deleteIntent.run(extent.eid);
      if (!this.s.inode.get(extent.ino)) {
        this.garbagePending = true;
        for (const f of fragments) this.s.insertGarbage.run({ disk: f.disk, eid: f.eid, slot: f.slot, size: f.size });
        for (const f of fragments) this.s.addUsed.run(f.size, f.disk);
        return false;
      }
      const old = this.s.extent.get(extent.ino, extent.idx);
      if (old) this.discardExtent(old.eid);
      this.s.upsertExtent.run(extent);
      for (const f of fragments) {
        this.s.insertFragment.run(f);
        this.s.addUsed.run(f.size, f.disk);
      }
      this.s.growSize.run({ size: fileSize, mtime, ctime, ino: extent.ino });
      return true;
    });
  }

  /** Drops extents at or past `firstDropped` and trims the one that holds the new end. Call inside tx. */
  truncateExtents(ino: number, newSize: number, extentSize: number): void {
    this.extentsChanged();
    const firstDropped = Math.ceil(newSize / extentSize);
    for (const e of this.s.extentsFrom.all(ino, firstDropped)) {
      this.discardExtent(e.eid);
      this.s.deleteExtent.run(ino, e.idx);
    }
    if (newSize % extentSize !== 0) {
      const idx = Math.floor(newSize / extentSize);
      const e = this.s.extent.get(ino, idx);
      const keep = newSize - idx * extentSize;
      if (e && e.length > keep) this.s.setExtentLength.run(keep, ino, idx);
    }
  }

  /** Frees all data of an inode and deletes it. Call inside tx. */
  freeInode(ino: number): void {
    this.extentsChanged();
    for (const e of this.s.extentsOf.all(ino)) this.discardExtent(e.eid);
    this.db.prepare('DELETE FROM extents WHERE ino = ?').run(ino);
    this.deleteInode(ino);
  }

  orphanInodes(): number[] {
    return this.s.orphanInodes.all().map((r) => r.ino);
  }

  garbage(limit: number): GarbageRow[] {
    return this.s.garbage.all(limit);
  }
  reclaimed(rows: GarbageRow[]): void {
    this.tx(() => {
      for (const g of rows) {
        this.s.deleteGarbage.run(g.disk, g.eid, g.slot);
        this.s.addUsed.run(-g.size, g.disk);
      }
    });
  }
  /** Fragments written under an intent that never committed: their bytes were counted nowhere. */
  discardIntentFragments(eid: number, placement: { slot: number; disk: string }[]): void {
    this.garbagePending = true;
    this.tx(() => {
      for (const p of placement) this.s.insertGarbage.run({ disk: p.disk, eid, slot: p.slot, size: 0 });
      this.s.deleteIntent.run(eid);
    });
  }

  /** Records that a replacement for fragment (eid, slot) is about to be written on `disk`. */
  beginRepair(eid: number, slot: number, disk: string, now: number): void {
    this.db.prepare('INSERT OR REPLACE INTO repair_intents (eid, slot, disk, created_at) VALUES (?, ?, ?, ?)').run(eid, slot, disk, now);
  }
  repairIntents(): { eid: number; slot: number; disk: string }[] {
    return this.db.prepare<[], { eid: number; slot: number; disk: string }>('SELECT eid, slot, disk FROM repair_intents').all();
  }
  dropRepairIntent(eid: number, slot: number, disk: string): void {
    this.db.prepare('DELETE FROM repair_intents WHERE eid = ? AND slot = ? AND disk = ?').run(eid, slot, disk);
  }
  fragment(eid: number, slot: number): FragmentRow | undefined {
    return this.db.prepare<[number, number], FragmentRow>('SELECT * FROM fragments WHERE eid = ? AND slot = ?').get(eid, slot);
  }
  clearFragmentError(eid: number, slot: number): void {
    this.db.prepare('DELETE FROM fragment_errors WHERE eid = ? AND slot = ?').run(eid, slot);
  }

  /**
   * Points fragment (eid, slot) at its rebuilt copy on `to`, if it still lives on `from` (a
   * concurrent overwrite may have replaced the extent meanwhile). The old copy becomes garbage.
   */
  commitRelocation(eid: number, slot: number, from: string, to: string, size: number): boolean {
    this.fragmentCache.delete(eid);
    return this.tx(() => {
      this.db.prepare('DELETE FROM repair_intents WHERE eid = ? AND slot = ? AND disk = ?').run(eid, slot, to);
      const row = this.fragment(eid, slot);
      this.garbagePending = true;
      if (!row || row.disk !== from) {
        this.s.insertGarbage.run({ disk: to, eid, slot, size: 0 });
        return false;
      }
      this.db.prepare('UPDATE fragments SET disk = ? WHERE eid = ? AND slot = ?').run(to, eid, slot);
      this.s.addUsed.run(size, to);
      this.s.insertGarbage.run({ disk: from, eid, slot, size });
      this.clearFragmentError(eid, slot);
      return true;
    });
  }

  getXattr(ino: number, name: string): Buffer | undefined {
    return this.s.getXattr.get(ino, storedName(name))?.value;
  }
  setXattr(ino: number, name: string, value: Buffer): void {
    this.s.setXattr.run(ino, storedName(name), value);
  }
  anyXattrNamed(name: string): boolean {
    return this.db.prepare('SELECT 1 FROM xattrs WHERE name = ? LIMIT 1').get(name) !== undefined;
  }
  listXattrs(ino: number): string[] {
    return this.s.listXattrs.all(ino).map((r) => loadedName(r.name));
  }
  removeXattr(ino: number, name: string): boolean {
    return this.s.removeXattr.run(ino, storedName(name)).changes > 0;
  }

  fragmentsOnDisk(disk: string): FragmentRow[] {
    return this.db.prepare<[string], FragmentRow>('SELECT * FROM fragments WHERE disk = ? ORDER BY eid, slot').all(disk);
  }
  extentByEid(eid: number): ExtentRow | undefined {
    return this.db.prepare<[number], ExtentRow>('SELECT * FROM extents WHERE eid = ?').get(eid);
  }
  /** Forgets a disk that holds nothing any more (its transitions stay in disk_events). */
  deleteDisk(id: string): void {
    this.tx(() => {
      const n = (this.db.prepare('SELECT count(*) AS n FROM fragments WHERE disk = ?').get(id) as { n: number }).n;
      if (n > 0) throw new Error(`disk ${id} still holds ${n} fragment(s)`);
      this.db.prepare('DELETE FROM garbage WHERE disk = ?').run(id);
      this.db.prepare('DELETE FROM disks WHERE id = ?').run(id);
    });
  }

  disks(): DiskRow[] {
    return this.s.disks.all();
  }
  insertDisk(d: {
    id: string;
    path: string;
    tier: string;
    capacity: number | null;
    health: string;
    at: number;
    failureDomain: string | null;
  }): void {
    this.s.insertDisk.run(d);
  }
  /** Redundancy policies set on top-level directories (the only place one can be set). */
  topLevelPolicies(): string[] {
    return (
      this.db
        .prepare(
          'SELECT DISTINCT i.policy AS policy FROM dirents d JOIN inodes i ON i.ino = d.ino WHERE d.parent = ? AND i.policy IS NOT NULL',
        )
        .all(ROOT_INO) as { policy: string }[]
    ).map((r) => r.policy);
  }

  setFailureDomain(id: string, name: string | null): void {
    this.db.prepare('UPDATE disks SET failure_domain = ? WHERE id = ?').run(name, id);
  }
  setDiskPath(id: string, path: string): void {
    this.s.setDiskPath.run(path, id);
  }
  setDiskHealth(id: string, from: string | null, to: string, reason: string, now: number): void {
    this.tx(() => {
      this.s.setDiskHealth.run(to, reason, now, id);
      this.s.insertDiskEvent.run(id, now, from, to, reason);
    });
  }
  diskEvents(id: string, limit: number): DiskEventRow[] {
    return this.s.diskEvents.all(id, limit);
  }
  bumpDiskErrors(id: string, kind: { read?: number; write?: number; checksum?: number }): void {
    this.s.bumpDiskErrors.run({ id, read: kind.read ?? 0, write: kind.write ?? 0, checksum: kind.checksum ?? 0 });
  }
  recordFragmentError(eid: number, slot: number, disk: string, kind: string, now: number): void {
    this.s.recordFragmentError.run(eid, slot, disk, kind, now);
  }
  fragmentErrors(): { eid: number; slot: number; disk: string; kind: string; at: number }[] {
    return this.db
      .prepare<[], { eid: number; slot: number; disk: string; kind: string; at: number }>('SELECT * FROM fragment_errors')
      .all();
  }

  /**
   * Forces every committed transaction to stable storage. A commit under synchronous=FULL syncs the
   * WAL, and with it every frame before it; frames already copied into the database file were synced
   * there by the checkpoint that copied them, before the WAL could start over. The `synced_at` row
   * is only there to give that commit something to write.
   */
  makeDurable(): void {
    this.db.pragma('synchronous = FULL');
    try {
      this.s.setMeta.run('synced_at', String(Date.now()));
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  close(): void {
    this.db.close();
  }

  /** Appends a history sample and keeps only the newest `keep` of its kind. */
  addHistory(kind: string, at: number, data: unknown, keep: number): void {
    this.tx(() => {
      this.db.prepare('INSERT INTO history (kind, at, data) VALUES (?, ?, ?)').run(kind, at, JSON.stringify(data));
      this.db
        .prepare('DELETE FROM history WHERE kind = ? AND id <= (SELECT id FROM history WHERE kind = ? ORDER BY id DESC LIMIT 1 OFFSET ?)')
        .run(kind, kind, keep);
    });
  }

  /** Samples of one kind, oldest first. */
  history<T>(kind: string): { at: number; data: T }[] {
    const rows = this.db.prepare('SELECT at, data FROM history WHERE kind = ? ORDER BY id').all(kind) as { at: number; data: string }[];
    return rows.map((r) => ({ at: r.at, data: JSON.parse(r.data) as T }));
  }

  private static readonly SUBTREE =
    'WITH RECURSIVE tree(ino) AS (SELECT ? UNION SELECT d.ino FROM dirents d JOIN tree t ON d.parent = t.ino)';

  /** Every inode under directory `ino`, itself included. */
  subtreeInodes(ino: number): number[] {
    return (this.db.prepare(`${MetadataStore.SUBTREE} SELECT ino FROM tree`).all(ino) as { ino: number }[]).map((r) => r.ino);
  }

  /**
   * Names and bytes under directory `ino`: apparent file sizes plus extended attributes (name, value
   * and a row's overhead), which are metadata on the node's own disk and must count against a volume
   * too. The attributes are summed per inode of the tree through their primary key.
   */
  subtreeUsage(ino: number): { inodes: number; bytes: number } {
    // `inodes` counts names (every hard link is a directory entry the metadata keeps) and the root.
    return this.db
      .prepare(
        `${MetadataStore.SUBTREE} SELECT 1 + (SELECT count(*) FROM dirents WHERE parent IN (SELECT ino FROM tree)) AS inodes, coalesce(sum(i.size), 0) + coalesce(sum(` +
          `(SELECT sum(length(CAST(x.name AS BLOB)) + length(x.value) + ${XATTR_ROW_BYTES}) FROM xattrs x WHERE x.ino = tree.ino)), 0) AS bytes ` +
          'FROM tree JOIN inodes i ON i.ino = tree.ino',
      )
      .get(ino) as { inodes: number; bytes: number };
  }

  /** Removes a key of the meta table (a finished operation's checkpoint or mark). */
  deleteMeta(key: string): void {
    this.db.prepare('DELETE FROM meta WHERE key = ?').run(key);
  }

  extentCount(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM extents').get() as { n: number }).n;
  }

  /** SQLite's page cache for this connection, in bytes. */
  setCacheSize(bytes: number): void {
    // Negative sizes are KiB.
    this.db.pragma(`cache_size = -${Math.max(256, Math.floor(bytes / 1024))}`);
  }

  /** A consistent copy of the database at `file` (SQLite's online backup). */
  backup(file: string): Promise<unknown> {
    return this.db.backup(file);
  }

  /** What fsck checks in the namespace tables alone: inodes, and rows that point at nothing. */
  namespaceProblems(): {
    inodes: number;
    danglingDirents: DirentRow[];
    /** Entries whose directory is gone: unreachable, with whatever they name. */
    parentlessDirents: DirentRow[];
    /** Volumes whose root directory is gone. */
    rootlessVolumes: string[];
    unreachableInodes: number[];
    extentsWithoutInode: { ino: number; idx: number }[];
  } {
    const db = this.db;
    return {
      inodes: (db.prepare('SELECT count(*) AS n FROM inodes').get() as { n: number }).n,
      danglingDirents: db
        .prepare<[], { parent: number; name: StoredName; ino: number }>(
          'SELECT d.* FROM dirents d LEFT JOIN inodes i ON i.ino = d.ino WHERE i.ino IS NULL',
        )
        .all()
        .map(loadedDirent),
      parentlessDirents: db
        .prepare<[], { parent: number; name: StoredName; ino: number }>(
          'SELECT d.* FROM dirents d LEFT JOIN inodes p ON p.ino = d.parent WHERE p.ino IS NULL',
        )
        .all()
        .map(loadedDirent),
      rootlessVolumes: db
        .prepare<[], { name: string }>('SELECT v.name FROM volumes v LEFT JOIN inodes i ON i.ino = v.ino WHERE i.ino IS NULL')
        .all()
        .map((r) => r.name),
      unreachableInodes: db
        .prepare<[number], { ino: number }>(
          'SELECT i.ino FROM inodes i WHERE i.ino != ? AND NOT EXISTS (SELECT 1 FROM dirents d WHERE d.ino = i.ino) AND i.nlink > 0',
        )
        .all(ROOT_INO)
        .map((r) => r.ino),
      extentsWithoutInode: db
        .prepare<[], { ino: number; idx: number }>(
          'SELECT e.ino, e.idx FROM extents e LEFT JOIN inodes i ON i.ino = e.ino WHERE i.ino IS NULL',
        )
        .all(),
    };
  }

  /** Bytes an extended attribute is charged (name, value and a row's overhead), 0 when it is not set. */
  xattrBytes(ino: number, name: string): number {
    const v = this.s.getXattr.get(ino, storedName(name));
    return v ? xattrCharge(name, v.value.length) : 0;
  }
}
