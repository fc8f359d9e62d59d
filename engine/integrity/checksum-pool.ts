import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { checksum, type ChecksumAlgorithm } from './checksum.js';

/** Below this size a message round trip costs more than hashing in place. */
const OFFLOAD_MIN_BYTES = 256 * 1024;

/**
 * Hashes large buffers on worker threads so the event loop (which also answers FUSE) stays free.
 * Only buffers backed by a SharedArrayBuffer are offloaded: the worker reads them without a copy.
 */
export class ChecksumPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, (sum: string) => void>();
  private nextId = 1;
  private turn = 0;

  constructor(private readonly size = Number(process.env.DYNAMICFS_HASH_WORKERS ?? Math.max(1, Math.min(4, availableParallelism() - 1)))) {}

  /** Workers start on first use, so short-lived CLI commands never pay for them. */
  private start(): void {
    for (let i = 0; i < this.size; i++) {
      const w = new Worker(new URL('./checksum-worker.js', import.meta.url));
      w.on('message', (m: { id: number; sum: string }) => {
        const done = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (this.pending.size === 0) for (const x of this.workers) x.unref();
        done?.(m.sum);
      });
      w.unref();
      this.workers.push(w);
    }
  }

  hash(alg: ChecksumAlgorithm, buf: Buffer): Promise<string> {
    if (!(buf.buffer instanceof SharedArrayBuffer) || buf.length < OFFLOAD_MIN_BYTES || this.size === 0) {
      return Promise.resolve(checksum(alg, buf));
    }
    if (this.workers.length === 0) this.start();
    const id = this.nextId++;
    const worker = this.workers[this.turn++ % this.workers.length];
    // A worker with work pending keeps the process alive; an idle one does not.
    if (this.pending.size === 0) for (const x of this.workers) x.ref();
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      worker.postMessage({ id, alg, buffer: buf.buffer, offset: buf.byteOffset, length: buf.length });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
