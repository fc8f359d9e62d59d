/** Decoded extents by extent id, least recently used evicted first, bounded in bytes. */
export class ExtentCache {
  private readonly map = new Map<number, Buffer>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(
    private readonly capacityBytes: number,
    private readonly onEvict: (b: Buffer) => void = () => undefined,
  ) {}

  get(eid: number): Buffer | undefined {
    const b = this.map.get(eid);
    if (b) {
      this.map.delete(eid);
      this.map.set(eid, b);
      this.hits++;
    } else {
      this.misses++;
    }
    return b;
  }

  has(eid: number): boolean {
    return this.map.has(eid);
  }

  set(eid: number, data: Buffer): void {
    const old = this.map.get(eid);
    if (old) {
      this.bytes -= old.length;
      this.map.delete(eid);
    }
    this.map.set(eid, data);
    this.bytes += data.length;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.capacityBytes) break;
      this.map.delete(k);
      this.bytes -= v.length;
      this.onEvict(v);
    }
  }

  delete(eid: number): void {
    const old = this.map.get(eid);
    if (old) {
      this.bytes -= old.length;
      this.map.delete(eid);
    }
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }
}
