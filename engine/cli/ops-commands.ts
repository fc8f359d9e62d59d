import path from 'node:path';
import { Option, type Command } from 'commander';
import { callControl } from '../control/client.js';
import { runPoolDaemon } from '../daemon/pool-daemon.js';
import type { Diagnosis } from '../report/diagnose.js';
import { toCsv, toJsonLines } from '../observability/event-log.js';
import { serveHttp } from '../observability/http-server.js';
import { isLoopbackListen } from '../util/listen.js';
import { logger, type LogFormat } from '../observability/logger.js';
import { readLockOwner } from '../pool/lock.js';
import { UsageError } from '../util/errors.js';
import { formatBytes } from '../util/units.js';
import { emit, onPool } from './on-pool.js';

const DURATION = /^(\d+)(s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: an ISO 8601 time, or a duration back from now such as 15m, 2h, 1d. */
export function parseSince(text: string): Date {
  const m = DURATION.exec(text);
  const d = m ? new Date(Date.now() - Number(m[1]) * UNIT_MS[m[2]]) : new Date(text);
  if (Number.isNaN(d.getTime())) throw new UsageError(`--since '${text}' is neither an ISO 8601 time nor a duration such as 15m, 2h, 1d`);
  return d;
}

function renderDiagnosis(d: Diagnosis): string {
  const ms = (l: Diagnosis['performance']['readLatencyMs']) =>
    l ? `p50 ${l.p50.toFixed(2)} ms, p95 ${l.p95.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms (${l.samples} ops)` : 'no operations observed';
  const lines = [
    `pool ${d.pool}: ${d.overall.toUpperCase()} (${d.issues.length} issue(s))`,
    '',
    'performance',
    `  fragment reads   ${ms(d.performance.readLatencyMs)}`,
    `  fragment writes  ${ms(d.performance.writeLatencyMs)}`,
    `  throughput       ${d.performance.throughput ? `${formatBytes(d.performance.throughput.readBytesPerSecond)}/s read, ${formatBytes(d.performance.throughput.writeBytesPerSecond)}/s written over ${d.performance.throughput.observedSeconds.toFixed(1)} s` : 'no I/O observed by this process'}`,
    `  extent cache     ${d.performance.cache.hitRatio === null ? 'no lookups' : `${(d.performance.cache.hitRatio * 100).toFixed(1)}% hits (${d.performance.cache.hits}/${d.performance.cache.hits + d.performance.cache.misses})`}`,
    '',
    'reliability',
    ...d.reliability.disks.map(
      (x) =>
        `  ${x.id.padEnd(14)} ${x.health.padEnd(9)} ${x.errors} errors, ${x.errorsPerDay.toFixed(2)}/day, MTTF ${x.mttfDays === null ? '-' : `${x.mttfDays.toFixed(1)} days`} (${x.mttfNote})`,
    ),
    `  rebuilds         ${d.reliability.rebuilds.runs} run(s), ${d.reliability.rebuilds.rebuilt}/${d.reliability.rebuilds.attempted} extents${d.reliability.rebuilds.successRate === null ? '' : ` (${(d.reliability.rebuilds.successRate * 100).toFixed(1)}%)`}`,
    `  last scrub       ${d.reliability.scrub.last ?? 'never'}${d.reliability.scrub.last ? `: ${d.reliability.scrub.issues} issues, ${d.reliability.scrub.repaired} repaired` : ''}${d.reliability.scrub.overdue ? ' (overdue)' : ''}`,
    `  extents          ${d.reliability.extents.healthy} healthy, ${d.reliability.extents.degraded} degraded, ${d.reliability.extents.unrecoverable} unrecoverable`,
    '',
    'capacity',
    `  pool             ${(d.capacity.pool.utilisation * 100).toFixed(1)}% (${formatBytes(d.capacity.pool.used)} of ${formatBytes(d.capacity.pool.capacity)})`,
    ...Object.entries(d.capacity.tiers).map(([t, v]) => `  tier ${t.padEnd(11)} ${(v.utilisation * 100).toFixed(1)}%`),
    ...d.capacity.disks.map((x) => `  ${x.id.padEnd(16)} ${(x.utilisation * 100).toFixed(1)}%`),
    `  growth           ${d.capacity.growthBytesPerDay === null ? `not enough history (${d.capacity.samples} sample(s))` : `${formatBytes(d.capacity.growthBytesPerDay)}/day${d.capacity.predictedFullAt ? `, full by ${d.capacity.predictedFullAt}` : ''}`}`,
  ];
  if (d.issues.length) {
    lines.push('', 'issues');
    for (const i of d.issues)
      lines.push(
        `  [${i.severity.toUpperCase()}] ${i.category}: ${i.message}`,
        `      do: ${i.recommendation}`,
        `      runbook: ${i.runbook}`,
      );
  }
  return lines.join('\n');
}

/** `serve`, `events`, `diagnose`: the operational commands. */
export function registerOpsCommands(program: Command): void {
  program
    .command('serve')
    .description(
      'serve /metrics, /health, /healthz, /readyz, /events, /diagnostics for a pool (from its daemon when mounted, else by opening it here)',
    )
    .argument('<pool>')
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:9090')
    .addOption(new Option('--log-format <format>', 'log format').choices(['auto', 'json', 'pretty']))
    .action(async (poolDir: string, o: { listen: string; logFormat?: LogFormat }) => {
      const abs = path.resolve(poolDir);
      if (readLockOwner(abs)) {
        // The running engine owns the numbers: forward every request to it.
        const network = !isLoopbackListen(o.listen);
        const server = await serveHttp(o.listen, (target) => callControl(abs, 'http', { path: target, network }));
        logger('serve').info(`serving ${abs} (answered by its daemon) on ${o.listen}`);
        await new Promise<void>((resolve) => {
          const done = () => server.close(() => resolve());
          process.once('SIGTERM', done);
          process.once('SIGINT', done);
        });
        return;
      }
      await runPoolDaemon(abs, { mountpoint: null, metricsListen: o.listen, logFormat: o.logFormat });
    });

  program
    .command('events')
    .description("export the event log of a pool's daemon (disk state changes, rebuilds, scrubs, repairs, errors, slow operations)")
    .argument('<pool>')
    .addOption(new Option('--format <format>', 'output format').choices(['jsonl', 'csv']).default('jsonl'))
    .option('--since <time>', 'ISO 8601 time or a duration back from now (15m, 2h, 1d)')
    .addOption(new Option('--level <level>', 'lowest level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal']))
    .option('--component <name>', 'only this component (pool, rebuild, scrub, fuse, daemon, audit, ...)')
    .action(async (poolDir: string, o: { format: string; since?: string; level?: string; component?: string }) => {
      const abs = path.resolve(poolDir);
      const since = o.since ? parseSince(o.since).toISOString() : undefined;
      if (!readLockOwner(abs))
        throw new Error(`no daemon serves ${abs}: the event log lives in the daemon's memory (mount the pool or run 'dynamicfs serve')`);
      const list = await callControl(abs, 'events', { since, level: o.level, component: o.component });
      process.stdout.write(o.format === 'csv' ? toCsv(list) : toJsonLines(list));
    });

  program
    .command('diagnose')
    .description('performance, reliability and capacity of a pool, with issues, recommendations and runbooks; exit 1 when critical')
    .argument('<pool>')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string) => {
      const d = await onPool(poolDir, 'diagnose', {});
      emit(d, renderDiagnosis(d));
      if (d.overall === 'critical') process.exitCode = 1;
    });
}
