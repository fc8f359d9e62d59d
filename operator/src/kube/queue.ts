/**
 * A work queue as good Go controllers have it: a key is queued at most once however often it is
 * added, is never processed by two workers at once (an add while it runs queues it again afterwards),
 * failures come back after a per-key exponential backoff, and a global token bucket caps the rate.
 */
export interface QueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  ratePerSecond?: number;
  burst?: number;
}

export class WorkQueue {
  private readonly queued = new Set<string>();
  private readonly order: string[] = [];
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private waiters: (() => void)[] = [];
  private tokens: number;
  private lastRefill = Date.now();
  private stopped = false;
  private readonly o: Required<QueueOptions>;

  constructor(options: QueueOptions = {}) {
    this.o = { baseDelayMs: 200, maxDelayMs: 60_000, ratePerSecond: 20, burst: 100, ...options };
    this.tokens = this.o.burst;
  }

  get depth(): number {
    return this.order.length;
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.order.push(key);
    this.waiters.shift()?.();
  }

  addAfter(key: string, ms: number): void {
    if (this.timers.has(key) || this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    t.unref();
    this.timers.set(key, t);
  }

  /** Requeues a failed key after its backoff: base * 2^failures, capped. */
  retry(key: string): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const delay = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** (n - 1));
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  private async token(): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.o.burst, this.tokens + ((now - this.lastRefill) / 1000) * this.o.ratePerSecond);
      this.lastRefill = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(1000 / this.o.ratePerSecond)));
    }
  }

  /** Runs `workers` loops calling `fn(key)` until stop(); a throw means retry with backoff. */
  async run(
    workers: number,
    fn: (key: string) => Promise<void>,
    onError: (key: string, err: unknown, retryInMs: number) => void,
  ): Promise<void> {
    const loop = async (): Promise<void> => {
      while (!this.stopped) {
        const key = this.order.shift();
        if (key === undefined) {
          await new Promise<void>((r) => this.waiters.push(r));
          continue;
        }
        this.queued.delete(key);
        await this.token();
        this.running.add(key);
        try {
          await fn(key);
          this.forget(key);
        } catch (err) {
          onError(key, err, this.retry(key));
        } finally {
          this.running.delete(key);
          if (this.dirty.delete(key)) this.add(key);
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, loop));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    for (const w of this.waiters.splice(0)) w();
  }
}
