import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { isNodeError } from '../util/errors.js';
import { DISK_IDENTITY, POOL_IDENTITY } from './layout.js';

export interface PoolIdentity {
  poolId: string;
  name: string;
  createdAt: string;
  format: 1;
}
export interface DiskIdentity {
  poolId: string;
  diskId: string;
  addedAt: string;
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as T;
  } catch (err) {
    if (isNodeError(err, 'ENOENT') || isNodeError(err, 'ENOTDIR')) return undefined;
    if (err instanceof SyntaxError) throw new Error(`${file} is not valid JSON: ${err.message}`);
    throw err;
  }
}

/** Writes a small file atomically: temp file, fsync, rename, fsync of the directory. */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await fsp.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  const dir = await fsp.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export function readPoolIdentity(poolDir: string): Promise<PoolIdentity | undefined> {
  return readJson<PoolIdentity>(path.join(poolDir, POOL_IDENTITY));
}
export function writePoolIdentity(poolDir: string, id: PoolIdentity): Promise<void> {
  return writeFileAtomic(path.join(poolDir, POOL_IDENTITY), JSON.stringify(id, null, 2) + '\n');
}
export function readDiskIdentity(diskDir: string): Promise<DiskIdentity | undefined> {
  return readJson<DiskIdentity>(path.join(diskDir, DISK_IDENTITY));
}
export function writeDiskIdentity(diskDir: string, id: DiskIdentity): Promise<void> {
  return writeFileAtomic(path.join(diskDir, DISK_IDENTITY), JSON.stringify(id, null, 2) + '\n');
}
