/**
 * A fragment I/O thread: reads fragments (O_DIRECT where the filesystem allows) into shared memory
 * and checksums them, and checksums and writes new ones, one message in and one out per fragment.
 *
 * These threads call open, read and close directly and block in them, by design: they are I/O
 * threads, like libuv's pool, and the event loop that answers FUSE never waits on them. Measured
 * here, going through libuv from this thread instead costs six more thread hand-offs per fragment
 * (~50 µs each on this VM) and a cold 1 GiB read was slower in 6-7 of 8 interleaved rounds
 * (0.61-0.69 of the do-nothing mount against 0.64-0.73).
 */
import fs, { constants } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { checksum, type ChecksumAlgorithm } from '../integrity/checksum.js';

/**
 * Where a job's bytes are: a range of a slab registered earlier (see FragmentWorkers), or of a
 * buffer sent along. Sending a SharedArrayBuffer costs a new object on both sides per message.
 */
export interface JobMemory {
  slab: number;
  buffer?: SharedArrayBuffer;
  offset: number;
  length: number;
}

export type FragmentJob =
  | ({ id: number; op: 'read'; file: string; direct: boolean; alg: ChecksumAlgorithm } & JobMemory)
  | ({ id: number; op: 'hash'; alg: ChecksumAlgorithm } & JobMemory)
  /** Creates (or truncates) the file and writes the bytes; checksums them first when `alg` is set. */
  | ({ id: number; op: 'write'; file: string; direct: boolean; alg: ChecksumAlgorithm | null } & JobMemory);

/** Registers a slab of shared memory under an id, once, before jobs name it. */
export interface SlabMessage {
  op: 'slab';
  slab: number;
  buffer: SharedArrayBuffer;
}

export type FragmentReply =
  | { id: number; ok: true; sum: string | null; direct?: boolean }
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

export interface FragmentWorkerData {
  /** Niceness of this thread (see FragmentWorkers). */
  nice: number;
}

/** Linux schedules threads one by one: /proc/thread-self names this one's id, which setpriority takes. */
function lowerPriority(nice: number): void {
  try {
    setPriority(Number(fs.readlinkSync('/proc/thread-self').split('/').pop()), nice);
  } catch {
    /* no /proc (not Linux): the thread keeps the process's priority */
  }
}

lowerPriority((workerData as FragmentWorkerData | undefined)?.nice ?? 0);

const slabs = new Map<number, Buffer>();

function memoryOf(job: FragmentJob): Buffer {
  if (job.buffer) return Buffer.from(job.buffer, job.offset, job.length);
  const slab = slabs.get(job.slab);
  if (!slab) throw new Error(`slab ${job.slab} was never registered`);
  return slab.subarray(job.offset, job.offset + job.length);
}

/** open, write all of it, close. */
function writeFrom(file: string, buf: Buffer, flags: number): void {
  // 0600: a fragment is file data, readable only by the engine (see util/private-files.ts).
  const fd = fs.openSync(file, flags, 0o600);
  try {
    let done = 0;
    while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, done);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Runs `io` with O_DIRECT in its open flags when asked, and again without if the filesystem refuses
 * it (tmpfs and the like answer EINVAL, at open or at the first transfer). Returns whether O_DIRECT held.
 */
function withDirect(direct: boolean, io: (flags: number) => void): boolean {
  try {
    io(direct ? constants.O_DIRECT : 0);
    return direct;
  } catch (err) {
    if (!direct || (err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    io(0);
    return false;
  }
}

function run(job: FragmentJob): FragmentReply {
  const buf = memoryOf(job);
  switch (job.op) {
    case 'hash':
      return { id: job.id, ok: true, sum: checksum(job.alg, buf) };
    case 'write': {
      const sum = job.alg ? checksum(job.alg, buf) : null;
      const direct = withDirect(job.direct, (flags) =>
        writeFrom(job.file, buf, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | flags),
      );
      return { id: job.id, ok: true, sum, direct };
    }
    case 'read': {
      let got = 0;
      const direct = withDirect(job.direct, (flags) => {
        got = readInto(job.file, buf, constants.O_RDONLY | flags);
      });
      if (got !== job.length) return { id: job.id, ok: false, code: 'SHORT', message: `read ${got} of ${job.length} bytes`, direct };
      return { id: job.id, ok: true, sum: checksum(job.alg, buf), direct };
    }
  }
}

parentPort?.on('message', (job: FragmentJob | SlabMessage) => {
  if (job.op === 'slab') {
    slabs.set(job.slab, Buffer.from(job.buffer));
    return;
  }
  let reply: FragmentReply;
  try {
    reply = run(job);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    reply = { id: job.id, ok: false, code: e.code ?? 'EIO', message: e.message };
  }
  parentPort?.postMessage(reply);
});
