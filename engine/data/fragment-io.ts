import fs, { promises as fsp } from 'node:fs';
import { checksum, type ChecksumAlgorithm } from '../integrity/checksum.js';
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

/**
 * Writes a new fragment file with the callback API (three thread-pool hops, no promise machinery)
 * and returns its checksum, computed while the write is under way.
 */
export function writeFragment(file: string, alg: ChecksumAlgorithm, data: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    fs.open(file, 'w', 0o644, (err, fd) => {
      if (err) return reject(err);
      const sum = checksum(alg, data);
      const writeFrom = (at: number): void => {
        fs.write(fd, data, at, data.length - at, at, (werr, n) => {
          if (werr) return fs.close(fd, () => reject(werr));
          if (at + n < data.length) return writeFrom(at + n);
          fs.close(fd, (cerr) => (cerr ? reject(cerr) : resolve(sum)));
        });
      };
      writeFrom(0);
    });
  });
}
