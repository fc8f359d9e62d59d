import { diagnose } from './diagnose.js';
import { events } from '../observability/logger.js';
import { isEventLevel, toCsv, toJsonLines } from '../observability/event-log.js';
import { metrics } from '../observability/metrics.js';
import type { PoolWatch } from './pool-watch.js';
import type { HttpReply } from '../observability/http-server.js';

/** What the endpoints look at: the pools this process hosts and whether it is ready to serve. */
export interface Host {
  pools(): PoolWatch[];
  ready(): { ready: boolean; reason: string };
}

const json = (status: number, value: unknown): HttpReply => ({
  status,
  type: 'application/json',
  body: JSON.stringify(value, null, 2) + '\n',
});
const HEALTH_CODE = { healthy: 200, degraded: 202, critical: 503 } as const;

/**
 * Who may ask: 'all' on loopback and the control socket; 'network' on any other address, where only
 * /metrics, /health, /healthz and /readyz are served unless `monitoring.network_endpoints` is 'all'
 * (/events and /diagnostics name files, disks and errors).
 */
export type HttpScope = 'all' | 'network';
const NETWORK_PATHS = new Set(['/metrics', '/metrics/prometheus', '/metrics/json', '/health', '/healthz', '/readyz']);

/**
 * The observability endpoints, as a function of the path: served over HTTP by a daemon, and
 * over the control socket to `dynamicfs serve` when another process owns the pool.
 */
export async function handleHttp(target: string, host: Host, scope: HttpScope = 'all'): Promise<HttpReply> {
  const url = new URL(target, 'http://localhost');
  const pools = host.pools();
  const open = scope === 'all' || pools.every((w) => w.pool.config.monitoring.network_endpoints === 'all');
  if (!open && !NETWORK_PATHS.has(url.pathname)) {
    return json(404, {
      error: `${url.pathname} is not served on a network address (monitoring.network_endpoints: metrics-and-health); use a loopback address, 'dynamicfs events' or 'dynamicfs diagnose'`,
      endpoints: [...NETWORK_PATHS],
    });
  }
  const metricsOn = pools.every((w) => w.pool.config.monitoring.metrics);
  switch (url.pathname) {
    case '/metrics':
    case '/metrics/prometheus':
      if (!metricsOn) return json(404, { error: 'metrics are off in the configuration (monitoring.metrics: false)' });
      return { status: 200, type: metrics.registry.contentType, body: await metrics.scrape() };
    case '/metrics/json':
      if (!metricsOn) return json(404, { error: 'metrics are off in the configuration (monitoring.metrics: false)' });
      return json(200, await metrics.scrapeJson());
    case '/healthz':
      return json(200, { alive: true, pid: process.pid });
    case '/readyz': {
      const r = host.ready();
      return json(r.ready ? 200 : 503, r);
    }
    case '/health': {
      const each = await Promise.all(
        pools.map(async (w) => {
          const s = await w.status();
          return { pool: w.pool.name, health: s.health, reasons: s.reasons, extents: s.extents, bytesAtRisk: s.bytesAtRisk };
        }),
      );
      const worst = each.some((p) => p.health === 'critical')
        ? 'critical'
        : each.some((p) => p.health === 'degraded')
          ? 'degraded'
          : 'healthy';
      const reasons = each.flatMap((p) => p.reasons.map((r) => `${p.pool}: ${r}`));
      return json(pools.length === 0 ? 503 : HEALTH_CODE[worst], {
        status: pools.length === 0 ? 'critical' : worst,
        reasons: pools.length ? reasons : ['no pool loaded'],
        pools: each,
      });
    }
    case '/events': {
      const level = url.searchParams.get('level') ?? undefined;
      if (level && !isEventLevel(level))
        return json(400, { error: `level '${level}' is not one of trace, debug, info, warn, error, fatal` });
      const sinceText = url.searchParams.get('since');
      const since = sinceText ? new Date(sinceText) : undefined;
      if (since && Number.isNaN(since.getTime())) return json(400, { error: `since '${sinceText}' is not an ISO 8601 time` });
      const list = events.list({ minLevel: level, component: url.searchParams.get('component') ?? undefined, since });
      const format = url.searchParams.get('format') ?? 'jsonl';
      if (format === 'csv') return { status: 200, type: 'text/csv', body: toCsv(list) };
      if (format === 'jsonl') return { status: 200, type: 'application/x-ndjson', body: toJsonLines(list) };
      return json(400, { error: `format '${format}' is not one of jsonl, csv` });
    }
    case '/diagnostics': {
      const out = await Promise.all(
        pools.map(async (w) =>
          diagnose(w.pool, await w.status(), w.pool.config, { hits: w.fs.data.cache.hits, misses: w.fs.data.cache.misses }),
        ),
      );
      return json(200, out.length === 1 ? out[0] : out);
    }
    default:
      return json(404, {
        error: `no endpoint ${url.pathname}`,
        endpoints: ['/metrics', '/metrics/prometheus', '/metrics/json', '/health', '/healthz', '/readyz', '/events', '/diagnostics'],
      });
  }
}
