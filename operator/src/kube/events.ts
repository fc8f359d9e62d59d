import { logger } from '../../../engine/observability/logger.js';
import type { KubeClient } from './raw.js';

const log = logger('events');

export interface Regarding {
  apiVersion: string;
  kind: string;
  name: string;
  uid?: string;
}

/** Emits events.k8s.io/v1 Events about cluster-scoped objects (they live in a namespace of our choosing). */
export class EventRecorder {
  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
    private readonly controller: string,
    private readonly instance: string,
  ) {}

  async emit(regarding: Regarding, type: 'Normal' | 'Warning', reason: string, action: string, note: string): Promise<void> {
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    try {
      await this.client.request('POST', `/apis/events.k8s.io/v1/namespaces/${this.namespace}/events`, {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { generateName: `${regarding.name}-`, namespace: this.namespace },
        eventTime: now,
        reportingController: this.controller,
        reportingInstance: this.instance,
        action,
        reason,
        note: note.slice(0, 1024),
        type,
        regarding,
      });
    } catch (err) {
      log.warn(`could not record event ${reason} for ${regarding.kind}/${regarding.name}: ${(err as Error).message}`);
    }
  }
}
