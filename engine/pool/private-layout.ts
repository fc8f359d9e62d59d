import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { PRIVATE_DIR, PRIVATE_FILE, tighten } from '../util/private-files.js';
import { isNodeError } from '../util/errors.js';
import {
  DISK_DATA_DIR,
  DISK_HINTS,
  DISK_IDENTITY,
  METADATA_MIRROR,
  POOL_IDENTITY,
  POOL_LOCK,
  POOL_METADATA,
  POOL_SOCKET,
} from './layout.js';

/** Files of the pool directory that hold metadata or identity (the database's WAL and shared memory included). */
const POOL_FILES = [
  POOL_IDENTITY,
  POOL_METADATA,
  `${POOL_METADATA}-wal`,
  `${POOL_METADATA}-shm`,
  DISK_HINTS,
  POOL_LOCK,
  POOL_SOCKET,
  'mount.log',
];

/** The 256 fragment directories of a disk (fragments/00 ... fragments/ff). */
export function fragmentDirs(diskPath: string): string[] {
  return Array.from({ length: 256 }, (_, i) => path.join(diskPath, DISK_DATA_DIR, 'fragments', i.toString(16).padStart(2, '0')));
}

/**
 * Pools made before files were private: the pool directory 0700 and its files 0600. Returns how many
 * paths were tightened.
 */
export async function tightenPoolDir(poolDir: string): Promise<number> {
  // A pool directory reached through a link: the directory itself is what must be closed.
  let n = (await tighten(await fsp.realpath(poolDir).catch(() => poolDir), PRIVATE_DIR)) ? 1 : 0;
  for (const f of POOL_FILES) if (await tighten(path.join(poolDir, f), PRIVATE_FILE)) n++;
  return n;
}

/**
 * A disk's own directories 0700 and its identity and mirror 0600. The disk directory itself is the
 * administrator's and keeps its mode; once `dynamicfs/` is 0700 no other user reaches a fragment.
 */
export async function tightenDisk(diskPath: string): Promise<number> {
  let n = 0;
  const data = path.join(diskPath, DISK_DATA_DIR);
  // The 256 fragment directories below are tightened with the fragment files (tightenFragments):
  // once these two are 0700 nobody else reaches them, and every open need not look at them.
  for (const d of [data, path.join(data, 'fragments')]) if (await tighten(d, PRIVATE_DIR)) n++;
  for (const f of [path.join(diskPath, DISK_IDENTITY), path.join(data, METADATA_MIRROR)]) if (await tighten(f, PRIVATE_FILE)) n++;
  return n;
}

/**
 * Fragment directories and files of older versions (0755, 0644) made 0700 and 0600. The directories
 * above them are already private, so this is belt and braces: it runs in the background of a daemon,
 * once per pool.
 */
export async function tightenFragments(diskPath: string): Promise<number> {
  let n = 0;
  for (const dir of fragmentDirs(diskPath)) {
    if (await tighten(dir, PRIVATE_DIR)) n++;
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch (err) {
      if (isNodeError(err, 'ENOENT')) continue;
      throw err;
    }
    for (const name of names) if (await tighten(path.join(dir, name), PRIVATE_FILE)) n++;
  }
  return n;
}
