import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { checksum, type ChecksumAlgorithm } from '../integrity/checksum.js';
import { BufferPool } from './buffer-pool.js';
import type { FragmentJob, FragmentReply } from './fragment-worker.js';
import { copyBytes } from '../util/bytes.js';

type JobBody = FragmentJob extends infer J ? (J extends FragmentJob ? Omit<J, 'id' | 'buffer' | 'offset' | 'length'> : never) : never;

/** Shares a buffer with a worker without copying: shared memory as is, anything else copied once. */
function shared(buf: Buffer): { buffer: SharedArrayBuffer; offset: number; length: number; copied: Buffer | null } {
  if (buf.buffer instanceof SharedArrayBuffer) return { buffer: buf.buffer, offset: buf.byteOffset, length: buf.length, copied: null };
  const sab = new SharedArrayBuffer(buf.length);
  const copy = Buffer.from(sab);
  copyBytes(buf, 0, buf.length, copy, 0);
  return { buffer: sab, offset: 0, length: buf.length, copied: copy };
}

/**
 * A small pool of fragment I/O threads that read and hash fragments (see fragment-worker.ts). The
 * main thread answers FUSE requests; measured here, moving open/read/close and xxh64 off it is what
 * lets reads keep up. A thread blocks in its read, so the pool is sized for the reads a sequential
 * reader keeps in flight (at least 4), and a job goes to the thread with the fewest jobs queued.
 */
export class FragmentWorkers {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, (r: FragmentReply) => void>();
  private nextId = 1;
  /** Jobs queued per worker. */
  private load: number[] = [];
  /** Disk roots where O_DIRECT was refused (tmpfs and the like). */
  private readonly noDirect = new Set<string>();

  private readonly size = Math.min(8, Math.max(4, availableParallelism()));

  private start(): void {
    for (let i = 0; i < this.size; i++) {
      const w = new Worker(new URL('./fragment-worker.js', import.meta.url));
      w.on('message', (r: FragmentReply) => {
        this.load[i]--;
        const done = this.pending.get(r.id);
        this.pending.delete(r.id);
        if (this.pending.size === 0) for (const x of this.workers) x.unref();
        done?.(r);
      });
      w.on('error', (err) => {
        for (const [id, done] of this.pending) done({ id, ok: false, code: 'EIO', message: `fragment worker died: ${err.message}` });
        this.pending.clear();
      });
      w.unref();
      this.workers.push(w);
      this.load.push(0);
    }
  }

  private submit(body: JobBody, buf: Buffer): Promise<FragmentReply> {
    if (this.workers.length === 0) this.start();
    const id = this.nextId++;
    const s = shared(buf);
    let pick = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i] < this.load[pick]) pick = i;
    this.load[pick]++;
    const worker = this.workers[pick];
    // Work in flight keeps the process alive; idle workers do not.
    if (this.pending.size === 0) for (const x of this.workers) x.ref();
    return new Promise((resolve) => {
      this.pending.set(id, (r) => {
        if (s.copied && body.op === 'read') copyBytes(s.copied, 0, s.copied.length, buf, 0);
        resolve(r);
      });
      worker.postMessage({ ...body, id, buffer: s.buffer, offset: s.offset, length: s.length });
    });
  }

  async hash(alg: ChecksumAlgorithm, buf: Buffer): Promise<string> {
    if (buf.length < 64 * 1024) return checksum(alg, buf);
    const r = await this.submit({ op: 'hash', alg }, buf);
    if (!r.ok) throw new Error(r.message);
    return r.sum;
  }

  /** Reads a whole fragment into `buf` (its exact size); resolves to its checksum or the failure. */
  async read(file: string, diskRoot: string, alg: ChecksumAlgorithm, buf: Buffer): Promise<FragmentReply> {
    const direct = !this.noDirect.has(diskRoot) && buf.length % 4096 === 0 && BufferPool.isPageAligned(buf);
    const r = await this.submit({ op: 'read', file, alg, direct }, buf);
    if (direct && r.direct === false) this.noDirect.add(diskRoot);
    return r;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
    this.load = [];
  }
}
