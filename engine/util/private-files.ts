import { promises as fsp } from 'node:fs';
import { isNodeError } from './errors.js';

/**
 * Everything the engine keeps on a host (fragments, metadata and its mirrors, identity and lock
 * files, logs, sockets, configuration) is readable only by its owner: a file that is 0600 inside the
 * mount must not be readable from a disk directory, nor its name from a metadata mirror.
 */
export const PRIVATE_FILE = 0o600;
export const PRIVATE_DIR = 0o700;

/**
 * Our programs create files with the modes above whatever umask they inherit: with a umask of 000 a
 * library (SQLite creates its database, WAL and shared-memory files 0644) would otherwise leave them
 * readable by everyone. Called first thing by each entry point (CLI, daemon, CSI plugin, node agent).
 */
export function restrictUmask(): void {
  process.umask(0o077);
}

/** Makes `p` no more open than `mode` (group and other bits cleared), if it exists. Never throws for a missing path. */
export async function tighten(p: string, mode: number): Promise<boolean> {
  try {
    const st = await fsp.lstat(p);
    if (st.isSymbolicLink()) return false;
    if ((st.mode & 0o7777 & ~mode) === 0) return false;
    await fsp.chmod(p, st.mode & mode & 0o7777);
    return true;
  } catch (err) {
    if (isNodeError(err, 'ENOENT') || isNodeError(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** mkdir -p whose new directories are PRIVATE_DIR (umask-proof: the last one is chmod'ed too). */
export async function mkdirPrivate(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
  await tighten(dir, PRIVATE_DIR);
}

/**
 * Creates an empty file that is PRIVATE_FILE from the start (a library then opens the existing file
 * instead of creating its own with a wider mode). Fails if the file exists.
 */
export async function createPrivateFile(file: string): Promise<void> {
  const fh = await fsp.open(file, 'wx', PRIVATE_FILE);
  await fh.close();
}
