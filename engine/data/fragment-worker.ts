/**
 * A fragment I/O thread: reads fragments (O_DIRECT where the filesystem allows) into shared memory
 * and checksums them, one message in and one message out per fragment.
 *
 * These threads call open, read and close directly and block in them, by design: they are I/O
 * threads, like libuv's pool, and the event loop that answers FUSE never waits on them. Measured
 * here, going through libuv from this thread instead costs six more thread hand-offs per fragment
 * (~50 µs each on this VM) and a cold 1 GiB read was slower in 6-7 of 8 interleaved rounds
 * (0.61-0.69 of the do-nothing mount against 0.64-0.73).
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

/** open, read until full or end of file, close; returns the bytes read. */
function readInto(file: string, buf: Buffer, flags: number): number {
  const fd = fs.openSync(file, flags);
  try {
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return got;
  } finally {
    fs.closeSync(fd);
  }
}

function run(job: FragmentJob): FragmentReply {
  const buf = Buffer.from(job.buffer, job.offset, job.length);
  switch (job.op) {
    case 'hash':
      return { id: job.id, ok: true, sum: checksum(job.alg, buf) };
    case 'read': {
      let direct = job.direct;
      let got: number;
      try {
        got = readInto(job.file, buf, constants.O_RDONLY | (direct ? constants.O_DIRECT : 0));
      } catch (err) {
        if (!direct || (err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
        direct = false;
        got = readInto(job.file, buf, constants.O_RDONLY);
      }
      if (got !== job.length) return { id: job.id, ok: false, code: 'SHORT', message: `read ${got} of ${job.length} bytes`, direct };
      return { id: job.id, ok: true, sum: checksum(job.alg, buf), direct };
    }
  }
}

parentPort?.on('message', (job: FragmentJob) => {
  let reply: FragmentReply;
  try {
    reply = run(job);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    reply = { id: job.id, ok: false, code: e.code ?? 'EIO', message: e.message };
  }
  parentPort?.postMessage(reply);
});
