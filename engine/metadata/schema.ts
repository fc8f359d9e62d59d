/** The pool's metadata schema. `schema_version` in `meta` says which version a database holds. */
export const SCHEMA_VERSION = 1;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS disks (
  id TEXT PRIMARY KEY, path TEXT NOT NULL, tier TEXT NOT NULL, capacity INTEGER,
  health TEXT NOT NULL, health_reason TEXT NOT NULL DEFAULT '', health_changed_at INTEGER NOT NULL,
  used INTEGER NOT NULL DEFAULT 0, read_errors INTEGER NOT NULL DEFAULT 0,
  write_errors INTEGER NOT NULL DEFAULT 0, checksum_errors INTEGER NOT NULL DEFAULT 0,
  added_at INTEGER NOT NULL, failure_domain TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS disk_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, disk TEXT NOT NULL, at INTEGER NOT NULL,
  from_state TEXT, to_state TEXT NOT NULL, reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inodes (
  ino INTEGER PRIMARY KEY AUTOINCREMENT, mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
  size INTEGER NOT NULL DEFAULT 0, nlink INTEGER NOT NULL, atime REAL NOT NULL, mtime REAL NOT NULL,
  ctime REAL NOT NULL, target TEXT, policy TEXT, rdev INTEGER, atime_ns INTEGER, mtime_ns INTEGER
);
CREATE TABLE IF NOT EXISTS dirents (
  parent INTEGER NOT NULL, name TEXT NOT NULL, ino INTEGER NOT NULL, PRIMARY KEY (parent, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dirents_by_ino ON dirents (ino);
CREATE TABLE IF NOT EXISTS extents (
  ino INTEGER NOT NULL, idx INTEGER NOT NULL, eid INTEGER NOT NULL, policy TEXT NOT NULL,
  length INTEGER NOT NULL, encoded_length INTEGER NOT NULL, checksum_alg TEXT NOT NULL,
  PRIMARY KEY (ino, idx)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS extents_by_eid ON extents (eid);
CREATE TABLE IF NOT EXISTS fragments (
  eid INTEGER NOT NULL, slot INTEGER NOT NULL, disk TEXT NOT NULL, size INTEGER NOT NULL,
  checksum TEXT NOT NULL, PRIMARY KEY (eid, slot)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fragments_by_disk ON fragments (disk);
CREATE TABLE IF NOT EXISTS fragment_errors (
  eid INTEGER NOT NULL, slot INTEGER NOT NULL, disk TEXT NOT NULL, kind TEXT NOT NULL, at INTEGER NOT NULL,
  PRIMARY KEY (eid, slot)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS write_intents (
  eid INTEGER PRIMARY KEY AUTOINCREMENT, created_at INTEGER NOT NULL, placement TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS repair_intents (
  eid INTEGER NOT NULL, slot INTEGER NOT NULL, disk TEXT NOT NULL, created_at INTEGER NOT NULL,
  PRIMARY KEY (eid, slot, disk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS garbage (
  disk TEXT NOT NULL, eid INTEGER NOT NULL, slot INTEGER NOT NULL, size INTEGER NOT NULL,
  PRIMARY KEY (disk, eid, slot)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
  id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, at INTEGER NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_kind ON history (kind, id);
CREATE TABLE IF NOT EXISTS volumes (
  name TEXT PRIMARY KEY, ino INTEGER NOT NULL, capacity INTEGER NOT NULL, policy TEXT NOT NULL, tier TEXT,
  ephemeral INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, context TEXT NOT NULL DEFAULT '{}',
  inode_limit INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS publications (
  target TEXT PRIMARY KEY, volume TEXT NOT NULL, readonly INTEGER NOT NULL, flags TEXT NOT NULL DEFAULT '[]', at INTEGER NOT NULL,
  root TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS xattrs (
  ino INTEGER NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (ino, name)
) WITHOUT ROWID;
`;

/**
 * Columns added after a table was first shipped: a database made by an older version gets them when
 * it is opened (ALTER TABLE ... ADD COLUMN; NULL in existing rows).
 */
export const ADDED_COLUMNS: { table: string; column: string; type: string }[] = [
  { table: 'volumes', column: 'inode_limit', type: 'INTEGER' },
  { table: 'publications', column: 'root', type: 'TEXT' },
  { table: 'disks', column: 'failure_domain', type: 'TEXT' },
  { table: 'inodes', column: 'rdev', type: 'INTEGER' },
  { table: 'inodes', column: 'atime_ns', type: 'INTEGER' },
  { table: 'inodes', column: 'mtime_ns', type: 'INTEGER' },
];
