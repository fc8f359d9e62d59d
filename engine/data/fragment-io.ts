import { constants, promises as fsp } from 'node:fs';
import { isNodeError } from '../util/errors.js';
import { BufferPool } from './buffer-pool.js';

export type FragmentReadResult = { ok: true; data: Buffer } | { ok: false; kind: 'missing' | 'short' | 'io' };

/** Directories (disks) whose filesystem refused O_DIRECT (tmpfs, for one): read them through the page cache. */
const noDirect = new Set<string>();

/**
 * Reads a whole fragment file of known size. With `directRoot` (the disk's path), whole-page
 * fragments are read with O_DIRECT into page-aligned buffers: we cache decoded extents ourselves,
 * so a second copy in the page cache would only cost CPU.
 */
export async function readFragmentFile(file: string, size: number, into?: Buffer, directRoot?: string): Promise<FragmentReadResult> {
  const buf = into && into.length === size ? into : Buffer.allocUnsafe(size);
  const direct = directRoot !== undefined && !noDirect.has(directRoot) && size % 4096 === 0 && BufferPool.isPageAligned(buf);
  if (direct) {
    const r = await readWith(file, buf, size, constants.O_RDONLY | constants.O_DIRECT);
    if (r !== 'EINVAL') return r;
    noDirect.add(directRoot);
  }
  const r = await readWith(file, buf, size, constants.O_RDONLY);
  return r === 'EINVAL' ? { ok: false, kind: 'io' } : r;
}

async function readWith(file: string, buf: Buffer, size: number, flags: number): Promise<FragmentReadResult | 'EINVAL'> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, flags);
  } catch (err) {
    if (isNodeError(err, 'EINVAL')) return 'EINVAL';
    return { ok: false, kind: isNodeError(err, 'ENOENT') || isNodeError(err, 'ENOTDIR') ? 'missing' : 'io' };
  }
  try {
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === size ? { ok: true, data: buf } : { ok: false, kind: 'short' };
  } catch (err) {
    if (isNodeError(err, 'EINVAL')) return 'EINVAL';
    return { ok: false, kind: 'io' };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Writes a fragment file (a new name every time: fragments are never overwritten in place). */
export async function writeFragmentFile(file: string, data: Buffer): Promise<void> {
  await fsp.writeFile(file, data, { flag: 'w' });
}

export async function syncFile(file: string): Promise<void> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (err) {
    if (isNodeError(err, 'ENOENT')) return;
    throw err;
  }
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
