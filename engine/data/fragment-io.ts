import { promises as fsp } from 'node:fs';
import { isNodeError } from '../util/errors.js';

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
