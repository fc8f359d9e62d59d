import { makeInformer, type KubeConfig, type KubernetesObject, type ListPromise } from '@kubernetes/client-node';
import { logger } from '../../../engine/observability/logger.js';

const log = logger('informer');

/**
 * An informer that keeps running: client-node stops an informer on any watch error other than 410,
 * so a watchdog restarts it with exponential backoff. Callbacks only hand keys to the caller; a
 * periodic resync re-offers every cached object.
 */
export class ResilientInformer<T extends KubernetesObject> {
  private informer: ReturnType<typeof makeInformer<T>> | null = null;
  private backoffMs = 500;
  private stopped = false;
  private resyncTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly kc: KubeConfig,
    private readonly path: string,
    private readonly lister: ListPromise<T>,
    private readonly onKey: (obj: T, deleted: boolean) => void,
    private readonly onError: () => void = () => undefined,
    private readonly resyncMs = 30_000,
  ) {}

  async start(): Promise<void> {
    const inf = makeInformer<T>(this.kc, this.path, this.lister);
    this.informer = inf;
    inf.on('add', (o) => this.onKey(o, false));
    inf.on('update', (o) => this.onKey(o, false));
    inf.on('delete', (o) => this.onKey(o, true));
    inf.on('error', (err: unknown) => {
      this.onError();
      if (this.stopped) return;
      const delay = this.backoffMs;
      this.backoffMs = Math.min(30_000, this.backoffMs * 2);
      log.warn(`watch of ${this.path} failed (${String(err)}); restarting in ${delay} ms`);
      setTimeout(() => {
        if (!this.stopped)
          void inf.start().then(
            () => (this.backoffMs = 500),
            () => undefined,
          );
      }, delay).unref();
    });
    inf.on('connect', () => {
      this.backoffMs = 500;
    });
    await inf.start();
    this.resyncTimer = setInterval(() => {
      for (const o of inf.list()) this.onKey(o, false);
    }, this.resyncMs);
    this.resyncTimer.unref();
  }

  list(): readonly T[] {
    return this.informer?.list() ?? [];
  }

  get(name: string): T | undefined {
    return this.informer?.get(name);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await this.informer?.stop();
  }
}
