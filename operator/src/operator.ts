import type http from 'node:http';
import os from 'node:os';
import { logger } from '../../engine/observability/logger.js';
import { metrics } from '../../engine/observability/metrics.js';
import { serveHttp } from '../../engine/observability/http-server.js';
import { withTrace } from '../../engine/observability/trace.js';
import type { DynamicFSPool } from './api/pool.js';
import { ConfigController } from './controllers/config-controller.js';
import { configPath, PoolController, poolPath } from './controllers/pool-controller.js';
import { EventRecorder } from './kube/events.js';
import { ResilientInformer } from './kube/informer.js';
import { LeaderElector } from './kube/leader.js';
import { WorkQueue } from './kube/queue.js';
import { KubeClient } from './kube/raw.js';
import { isLeader, queueDepth, reconcileSeconds, reconcileTotal, watchErrors } from './metrics.js';
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';

const log = logger('operator');

export interface OperatorOptions {
  kubeconfig?: string;
  namespace: string;
  leaseName: string;
  identity?: string;
  metricsListen?: string;
  nodeStaleMs?: number;
}

/** The operator: leader-elected; informers feed de-duplicating queues; controllers decide. */
export async function runOperator(o: OperatorOptions): Promise<void> {
  const client = KubeClient.load(o.kubeconfig);
  const identity = o.identity ?? `${os.hostname()}-${process.pid}`;
  let http: http.Server | null = null;
  if (o.metricsListen) {
    http = await serveHttp(o.metricsListen, async (target) => {
      const p = new URL(target, 'http://x').pathname;
      if (p === '/metrics') return { status: 200, type: metrics.registry.contentType, body: await metrics.registry.metrics() };
      if (p === '/healthz' || p === '/readyz')
        return { status: 200, type: 'application/json', body: JSON.stringify({ ok: true, leader: elector.leading }) };
      return { status: 404, type: 'application/json', body: '{"error":"not found"}' };
    });
  }
  const elector = new LeaderElector(client, o.namespace, o.leaseName, identity);
  const events = new EventRecorder(client, o.namespace, 'dynamicfs.io/operator', identity);
  const poolQueue = new WorkQueue();
  const configQueue = new WorkQueue();
  const list =
    <T extends KubernetesObject>(path: string) =>
    () =>
      client.get<KubernetesListObject<T>>(path);
  const pools = new ResilientInformer<DynamicFSPool & KubernetesObject>(
    client.kc,
    poolPath(),
    list(poolPath()),
    (p) => {
      poolQueue.add(p.metadata?.name ?? '');
      if (p.spec?.configRef) configQueue.add(p.spec.configRef);
    },
    () => watchErrors.inc({ resource: 'dynamicfspools' }),
  );
  const configs = new ResilientInformer<KubernetesObject>(
    client.kc,
    configPath(),
    list(configPath()),
    (c) => {
      configQueue.add(c.metadata?.name ?? '');
      for (const p of pools.list()) if (p.spec.configRef === c.metadata?.name) poolQueue.add(p.metadata?.name ?? '');
    },
    () => watchErrors.inc({ resource: 'dynamicfsconfigs' }),
  );
  const poolController = new PoolController(client, events, o.nodeStaleMs);
  const configController = new ConfigController(client, () => pools.list());
  const depth = setInterval(() => {
    queueDepth.set({ controller: 'pool' }, poolQueue.depth);
    queueDepth.set({ controller: 'config' }, configQueue.depth);
  }, 1000);
  depth.unref();

  const work = (name: string, queue: WorkQueue, fn: (key: string) => Promise<number | null>) =>
    queue.run(
      2,
      (key) =>
        withTrace(`reconcile ${name}/${key}`, async () => {
          const end = reconcileSeconds.startTimer({ controller: name });
          try {
            const again = await fn(key);
            reconcileTotal.inc({ controller: name, result: 'ok' });
            if (again !== null) queue.addAfter(key, again);
          } catch (err) {
            reconcileTotal.inc({ controller: name, result: 'error' });
            throw err;
          } finally {
            end();
          }
        }),
      (key, err, retryMs) => log.warn(`reconcile ${name}/${key} failed, retrying in ${retryMs} ms: ${(err as Error).message}`, { key }),
    );

  let stopping = false;
  const shutdown = async (why: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`stopping: ${why}`);
    poolQueue.stop();
    configQueue.stop();
    await pools.stop();
    await configs.stop();
    await elector.release();
    http?.close();
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM').then(() => process.exit(0)));
  process.once('SIGINT', () => void shutdown('SIGINT').then(() => process.exit(0)));

  log.info(`operator ${identity} waiting for the lease ${o.namespace}/${o.leaseName}`);
  await elector.run(
    () => {
      isLeader.set(1);
      log.event('info', `${identity} is the leader`, { identity });
      void pools
        .start()
        .then(() => configs.start())
        .then(() => {
          void work('pool', poolQueue, (k) => poolController.reconcile(k));
          void work('config', configQueue, (k) => configController.reconcile(k));
        });
    },
    () => {
      isLeader.set(0);
      // Never act without the lease: stop at once and let the process restart.
      log.error(`${identity} lost the lease; exiting`);
      void shutdown('lost the lease').then(() => process.exit(1));
    },
  );
}
