import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { checksum, type ChecksumAlgorithm } from '../integrity/checksum.js';
import { BufferPool } from './buffer-pool.js';
import type { FragmentJob, FragmentReply, FragmentWorkerData, JobMemory, SlabMessage } from './fragment-worker.js';
import { copyBytes } from '../util/bytes.js';

type JobBody = FragmentJob extends infer J
  ? J extends FragmentJob
    ? Omit<J, 'id' | 'slab' | 'buffer' | 'offset' | 'length'>
    : never
  : never;

/** Shares a buffer with a worker without copying: shared memory as is, anything else copied once. */
function shared(buf: Buffer): { buffer: SharedArrayBuffer; offset: number; length: number; copied: Buffer | null } {
  if (buf.buffer instanceof SharedArrayBuffer) return { buffer: buf.buffer, offset: buf.byteOffset, length: buf.length, copied: null };
  const sab = new SharedArrayBuffer(buf.length);
  const copy = Buffer.from(sab);
  copyBytes(buf, 0, buf.length, copy, 0);
  return { buffer: sab, offset: 0, length: buf.length, copied: copy };
}

/**
 * Niceness of the fragment I/O threads. On a busy node they compete for the CPU with the threads
 * that answer FUSE requests, and read-ahead gives them slack: measured here on 2 cores, cold 1 GiB
 * reads with these threads at nice 19 were faster in 8 of 8 interleaved rounds (median 0.755 of the
 * do-nothing mount against 0.68 at nice 0; nice 10 gave 0.71). A thread that is alone on the CPU
 * (scrub, rebuild) runs as fast as before.
 */
export const IO_THREAD_NICE = 19;

/**
 * A small pool of fragment I/O threads that read, write and checksum fragments (see
 * fragment-worker.ts). The main thread answers FUSE requests; measured here, moving the fragment
 * system calls and checksums off it is what lets reads keep up. A thread blocks in its system calls,
 * so the pool is sized for the reads a sequential reader keeps in flight (at least 4), and a job
 * goes to the thread with the fewest jobs queued.
 */
export class FragmentWorkers {
  private readonly workers: Worker[] = [];
  /** Jobs sent and not answered yet, with the slot of the thread that has each. */
  private readonly pending = new Map<number, { worker: number; done: (r: FragmentReply) => void }>();
  private closing = false;
  private nextId = 1;
  /** Jobs queued per worker. */
  private load: number[] = [];
  /** Disk roots where O_DIRECT was refused (tmpfs and the like). */
  private readonly noDirect = new Set<string>();

  readonly threads = Math.min(8, Math.max(4, availableParallelism()));
  /** Buffer pool slabs every worker has been sent, by id. */
  private readonly slabIds = new Map<SharedArrayBuffer, number>();
  /** Whether the thread of each slot runs; one that keeps dying at start is restarted after a pause. */
  private alive: boolean[] = [];
  private pause: number[] = [];
  /** Why the last thread died, as an errno name when it was this process's limit (EMFILE, ENFILE, ENOMEM). */
  private lastFailure = { code: 'EIO', message: 'it exited' };

  private start(): void {
    for (let i = 0; i < this.threads; i++) {
      this.load.push(0);
      this.alive.push(true);
      this.pause.push(0);
      this.workers.push(this.spawn(i));
    }
  }

  /**
   * Starts the thread of slot i. A thread that dies (an error outside a job, or killed) fails the jobs
   * it held with EIO and is replaced, so no later job waits on a dead thread.
   */
  private spawn(i: number): Worker {
    const workerData: FragmentWorkerData = { nice: IO_THREAD_NICE };
    const w = new Worker(new URL('./fragment-worker.js', import.meta.url), { workerData });
    const born = Date.now();
    this.alive[i] = true;
    let failure = 'it exited';
    w.on('message', (r: FragmentReply) => {
      this.load[i]--;
      const job = this.pending.get(r.id);
      this.pending.delete(r.id);
      if (this.pending.size === 0) for (const x of this.workers) x.unref();
      job?.done(r);
    });
    w.on('error', (err) => {
      failure = err.message;
    });
    w.on('exit', () => {
      if (this.closing || this.workers[i] !== w) return;
      // Out of descriptors or memory is this process's trouble, not a disk's: said so in the code.
      const code = /\b(EMFILE|ENFILE|ENOMEM)\b/.exec(failure)?.[1] ?? 'EIO';
      this.lastFailure = { code, message: `fragment I/O thread died: ${failure}` };
      this.alive[i] = false;
      for (const [id, job] of this.pending) {
        if (job.worker !== i) continue;
        this.pending.delete(id);
        job.done({ id, ok: false, code, message: this.lastFailure.message });
      }
      this.load[i] = 0;
      // A thread that dies at once (no descriptors to start one) is restarted after a growing pause,
      // not in a loop; the other threads, or an immediate answer, serve the jobs meanwhile.
      this.pause[i] = Date.now() - born < 1000 ? Math.min(5000, Math.max(100, this.pause[i] * 2)) : 0;
      const restart = () => {
        if (this.closing || this.workers[i] !== w) return;
        const next = this.spawn(i);
        for (const [buffer, slab] of this.slabIds) next.postMessage({ op: 'slab', slab, buffer } satisfies SlabMessage);
        if (this.pending.size === 0) next.unref();
        this.workers[i] = next;
      };
      if (this.pause[i] === 0) restart();
      else setTimeout(restart, this.pause[i]).unref();
    });
    w.unref();
    return w;
  }

  private submit(body: JobBody, buf: Buffer): Promise<FragmentReply> {
    if (this.workers.length === 0) this.start();
    const id = this.nextId++;
    let pick = -1;
    for (let i = 0; i < this.load.length; i++) if (this.alive[i] && (pick < 0 || this.load[i] < this.load[pick])) pick = i;
    if (pick < 0)
      return Promise.resolve({
        id,
        ok: false,
        code: this.lastFailure.code,
        message: `no fragment I/O thread is running (${this.lastFailure.message})`,
      });
    const s = shared(buf);
    this.load[pick]++;
    const worker = this.workers[pick];
    const memory = this.memory(s.buffer, s.offset, s.length);
    // Work in flight keeps the process alive; idle workers do not.
    if (this.pending.size === 0) for (const x of this.workers) x.ref();
    return new Promise((resolve) => {
      this.pending.set(id, {
        worker: pick,
        done: (r) => {
          if (s.copied && body.op === 'read') copyBytes(s.copied, 0, s.copied.length, buf, 0);
          resolve(r);
        },
      });
      worker.postMessage({ ...body, id, ...memory });
    });
  }

  /** A slab of a buffer pool is registered with every worker once; other memory travels with the job. */
  private memory(buffer: SharedArrayBuffer, offset: number, length: number): JobMemory {
    if (!BufferPool.isSlab(buffer)) return { slab: -1, buffer, offset, length };
    let slab = this.slabIds.get(buffer);
    if (slab === undefined) {
      slab = this.slabIds.size;
      this.slabIds.set(buffer, slab);
      const msg: SlabMessage = { op: 'slab', slab, buffer };
      for (const w of this.workers) w.postMessage(msg);
    }
    return { slab, offset, length };
  }

  async hash(alg: ChecksumAlgorithm, buf: Buffer): Promise<string> {
    if (buf.length < 64 * 1024) return checksum(alg, buf);
    const r = await this.submit({ op: 'hash', alg }, buf);
    if (!r.ok) throw new Error(r.message);
    return r.sum as string;
  }

  /**
   * Writes a new fragment file on the disk at `diskRoot` (replacing any file of that name) and, when
   * `alg` is given, resolves to the checksum of the bytes. Rejects with the system error, its `code`
   * set (ENOSPC, EROFS, ...).
   */
  async write(file: string, diskRoot: string, buf: Buffer, alg: ChecksumAlgorithm | null): Promise<string | null> {
    const r = await this.onDisk(diskRoot, buf, (direct) => ({ op: 'write', file, alg, direct }));
    if (!r.ok) throw Object.assign(new Error(r.message), { code: r.code });
    return r.sum;
  }

  /** Reads a whole fragment into `buf` (its exact size); resolves to its checksum or the failure. */
  read(file: string, diskRoot: string, alg: ChecksumAlgorithm, buf: Buffer): Promise<FragmentReply> {
    return this.onDisk(diskRoot, buf, (direct) => ({ op: 'read', file, alg, direct }));
  }

  /**
   * A read or write job, with O_DIRECT when the buffer allows it (page-aligned slab memory, whole
   * pages) and the disk's filesystem has not refused it before: the bytes skip the page cache.
   */
  private async onDisk(diskRoot: string, buf: Buffer, job: (direct: boolean) => JobBody): Promise<FragmentReply> {
    const direct = !this.noDirect.has(diskRoot) && buf.length % 4096 === 0 && BufferPool.isPageAligned(buf);
    const r = await this.submit(job(direct), buf);
    if (direct && r.direct === false) this.noDirect.add(diskRoot);
    return r;
  }

  /** Ends the thread of slot i as if it had crashed (tests use it: nothing else can kill one). */
  killThreadForTest(i: number): Promise<number> {
    return this.workers[i].terminate();
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.closing = false;
    this.workers.length = 0;
    this.slabIds.clear();
    this.load = [];
    this.alive = [];
    this.pause = [];
  }
}
