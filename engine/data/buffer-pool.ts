const PAGE = 4096;
const WASM_PAGE = 65536;

/**
 * Recycles extent-sized buffers carved from one shared WebAssembly memory. Three reasons:
 * a fresh 1 MiB buffer costs 256 page faults on first touch (more than the copy itself);
 * the memory is a SharedArrayBuffer, so checksum workers read it without a copy; and it is
 * page-aligned, so fragment reads can use O_DIRECT and skip the kernel's page-cache copy.
 */
export class BufferPool {
  private static readonly slabs = new WeakSet<ArrayBufferLike>();
  private slab: WebAssembly.Memory | null = null;
  private readonly free: number[] = [];
  private readonly stride: number;

  constructor(
    readonly size: number,
    private readonly slots: number,
  ) {
    this.stride = Math.ceil(size / PAGE) * PAGE;
  }

  private ensureSlab(): WebAssembly.Memory {
    if (!this.slab) {
      const pages = Math.ceil((this.stride * this.slots) / WASM_PAGE);
      this.slab = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      BufferPool.slabs.add(this.slab.buffer);
      for (let i = this.slots - 1; i >= 0; i--) this.free.push(i * this.stride);
    }
    return this.slab;
  }

  /** Touches every page of the slab now, so the first reads and writes do not pay its page faults. */
  prefault(): void {
    const slab = this.ensureSlab();
    Buffer.from(slab.buffer).fill(0);
  }

  /** A buffer of `size` bytes with unspecified contents; page-aligned when it comes from the slab. */
  take(): Buffer {
    const slab = this.ensureSlab();
    const offset = this.free.pop();
    if (offset === undefined) return Buffer.from(new SharedArrayBuffer(this.size));
    return Buffer.from(slab.buffer, offset, this.size);
  }

  give(buf: Buffer): void {
    if (this.slab && buf.buffer === this.slab.buffer && buf.length === this.size) this.free.push(buf.byteOffset);
  }

  /** Whether `memory` is the slab of some BufferPool (it lives as long as its pool). */
  static isSlab(memory: ArrayBufferLike): boolean {
    return BufferPool.slabs.has(memory);
  }

  static isPageAligned(buf: Buffer): boolean {
    // Slab buffers sit at page-multiple offsets of a page-aligned mapping.
    return BufferPool.slabs.has(buf.buffer) && buf.byteOffset % PAGE === 0;
  }
}
