import { promises as fsp } from 'node:fs';
import { isNodeError } from '../util/errors.js';

/** fsync of a file or directory; one that is gone already is nothing to sync. */
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
