import { Counter, Gauge, Histogram } from 'prom-client';
import { metrics } from '../../engine/observability/metrics.js';

/** Reconcile metrics on the process's one registry (served on /metrics). */
export const reconcileTotal = new Counter({
  name: 'dynamicfs_reconcile_total',
  help: 'Reconciles by controller and result (ok or error).',
  labelNames: ['controller', 'result'],
  registers: [metrics.registry],
});
export const reconcileSeconds = new Histogram({
  name: 'dynamicfs_reconcile_duration_seconds',
  help: 'Reconcile duration by controller.',
  labelNames: ['controller'],
  registers: [metrics.registry],
  buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
});
export const queueDepth = new Gauge({
  name: 'dynamicfs_workqueue_depth',
  help: 'Keys waiting in a controller work queue.',
  labelNames: ['controller'],
  registers: [metrics.registry],
});
export const isLeader = new Gauge({
  name: 'dynamicfs_operator_leader',
  help: '1 while this replica holds the leader lease.',
  registers: [metrics.registry],
});
export const watchErrors = new Counter({
  name: 'dynamicfs_watch_errors_total',
  help: 'Watch failures (each restarts its informer with backoff).',
  labelNames: ['resource'],
  registers: [metrics.registry],
});
