/**
 * Fragment reads off the event loop that answers FUSE: reads (O_DIRECT where the filesystem allows)
 * and checksums of fragments held in shared memory. One message in, one message out.
 */
import fs, { constants } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { checksum, type ChecksumAlgorithm } from '../integrity/checksum.js';

export type FragmentJob =
  | { id: number; op: 'read'; file: string; buffer: SharedArrayBuffer; offset: number; length: number; direct: boolean; alg: ChecksumAlgorithm }
  | { id: number; op: 'hash'; buffer: SharedArrayBuffer; offset: number; length: number; alg: ChecksumAlgorithm };

export type FragmentReply =
  | { id: number; ok: true; sum: string; direct?: boolean }
  | { id: number; ok: false; code: string; message: string; direct?: boolean };

/** open, read until full or end of file, close: the callback API (no FileHandle objects to finalise). */
function readInto(file: string, buf: Buffer, flags: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.open(file, flags, (err, fd) => {
      if (err) return reject(err);
      const step = (got: number): void => {
        if (got >= buf.length) return fs.close(fd, () => resolve(got));
        fs.read(fd, buf, got, buf.length - got, got, (rerr, n) => {
          if (rerr) return fs.close(fd, () => reject(rerr));
          if (n === 0) return fs.close(fd, () => resolve(got));
          step(got + n);
        });
      };
      step(0);
    });
  });
}

async function run(job: FragmentJob): Promise<FragmentReply> {
  const buf = Buffer.from(job.buffer, job.offset, job.length);
  switch (job.op) {
    case 'hash':
      return { id: job.id, ok: true, sum: checksum(job.alg, buf) };
    case 'read': {
      let direct = job.direct;
      let got: number;
      try {
        got = await readInto(job.file, buf, constants.O_RDONLY | (direct ? constants.O_DIRECT : 0));
      } catch (err) {
        if (!direct || (err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
        direct = false;
        got = await readInto(job.file, buf, constants.O_RDONLY);
      }
      if (got !== job.length) return { id: job.id, ok: false, code: 'SHORT', message: `read ${got} of ${job.length} bytes`, direct };
      return { id: job.id, ok: true, sum: checksum(job.alg, buf), direct };
    }
  }
}

parentPort?.on('message', (job: FragmentJob) => {
  run(job).then(
    (reply) => parentPort?.postMessage(reply),
    (err: NodeJS.ErrnoException) => parentPort?.postMessage({ id: job.id, ok: false, code: err.code ?? 'EIO', message: err.message }),
  );
});
