import { lastScrub } from '../heal/scrub.js';
import type { Pool } from '../pool/pool.js';

/** When the next scheduled scrub is due: an interval after the last one ended (or after the pool was created). */
export function nextScrubDue(pool: Pool): number {
  const last = lastScrub(pool);
  const from = last ? Date.parse(last.finishedAt) : Date.parse(pool.identity.createdAt);
  return from + pool.config.reliability.scrub_interval * 1000;
}

/**
 * Runs `job` whenever `due()` has passed, checking often enough for the interval in force (the
 * configuration can change live). Never runs two jobs at once.
 */
export class Schedule {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly enabled: () => boolean,
    private readonly due: () => number,
    private readonly job: () => Promise<void>,
    private readonly checkEveryMs: () => number,
  ) {}

  start(): void {
    const tick = () => {
      this.timer = setTimeout(
        () => {
          void this.check().finally(() => {
            if (this.timer) tick();
          });
        },
        Math.max(200, this.checkEveryMs()),
      );
      this.timer.unref();
    };
    tick();
  }

  private async check(): Promise<void> {
    if (this.running || !this.enabled() || Date.now() < this.due()) return;
    this.running = true;
    try {
      await this.job();
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
