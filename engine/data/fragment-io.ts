import { promises as fsp } from 'node:fs';
import { isNodeError } from '../util/errors.js';

export type FragmentReadResult = { ok: true; data: Buffer } | { ok: false; kind: 'missing' | 'short' | 'io' };

/** Reads a whole fragment file of known size into a fresh buffer. */
export async function readFragmentFile(file: string, size: number): Promise<FragmentReadResult> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (err) {
    return { ok: false, kind: isNodeError(err, 'ENOENT') || isNodeError(err, 'ENOTDIR') ? 'missing' : 'io' };
  }
  try {
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === size ? { ok: true, data: buf } : { ok: false, kind: 'short' };
  } catch {
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
