import type { PoolStatus } from './status.js';
import { printableName } from '../util/byte-names.js';
import type { EngineConfig } from '../config/schema.js';
import { lastScrub } from '../heal/scrub.js';
import { diskIo } from '../observability/disk-io.js';
import type { Pool } from '../pool/pool.js';
import { formatBytes } from '../util/units.js';
import { rawSpace } from '../pool/capacity.js';
import { bySeverity, overallHealth, RUNBOOKS, type DiagnosticIssue } from './issues.js';

const DAY = 86_400_000;

export interface Diagnosis {
  pool: string;
  generatedAt: string;
  overall: 'healthy' | 'warning' | 'critical';
  performance: {
    readLatencyMs: { p50: number; p95: number; p99: number; samples: number } | null;
    writeLatencyMs: { p50: number; p95: number; p99: number; samples: number } | null;
    throughput: { readBytesPerSecond: number; writeBytesPerSecond: number; observedSeconds: number } | null;
    cache: { hits: number; misses: number; hitRatio: number | null };
  };
  reliability: {
    disks: {
      id: string;
      health: string;
      errors: number;
      ageDays: number;
      errorsPerDay: number;
      mttfDays: number | null;
      mttfNote: string;
    }[];
    rebuilds: { runs: number; attempted: number; rebuilt: number; failed: number; successRate: number | null };
    scrub: { last: string | null; ageDays: number | null; issues: number; repaired: number; unrecoverable: number; overdue: boolean };
    extents: PoolStatus['extents'];
    bytesAtRisk: number;
  };
  capacity: {
    pool: { used: number; capacity: number; utilisation: number };
    disks: { id: string; tier: string; used: number; capacity: number; utilisation: number }[];
    tiers: Record<string, { used: number; capacity: number; utilisation: number }>;
    growthBytesPerDay: number | null;
    predictedFullAt: string | null;
    samples: number;
  };
  issues: DiagnosticIssue[];
}

interface UsageSample {
  used: number;
  capacity: number;
}
interface RebuildSample {
  attempted: number;
  rebuilt: number;
  failed: number;
}

/** Least-squares slope of bytes used over time, in bytes per day; null with fewer than two samples. */
function growthPerDay(samples: { at: number; data: UsageSample }[]): number | null {
  if (samples.length < 2 || samples[samples.length - 1].at === samples[0].at) return null;
  const xs = samples.map((s) => s.at / DAY);
  const ys = samples.map((s) => s.data.used);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? null : num / den;
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const ratio = (used: number, cap: number): number => (cap > 0 ? used / cap : 0);

/**
 * Performance, reliability and capacity of a pool, and the issues found against the configured
 * thresholds, each with a recommendation and its runbook.
 */
export function diagnose(
  pool: Pool,
  status: PoolStatus,
  config: EngineConfig,
  cache: { hits: number; misses: number },
  now = Date.now(),
): Diagnosis {
  const t = config.monitoring.diagnostics;
  const issues: DiagnosticIssue[] = [];
  const name = pool.name;

  // Performance
  const readLatencyMs = diskIo.latency(name, 'read');
  const writeLatencyMs = diskIo.latency(name, 'write');
  const totals = diskIo.totalsOf(name);
  const observedSeconds = totals ? Math.max(0.001, (now - totals.since) / 1000) : 0;
  const throughput = totals
    ? {
        readBytesPerSecond: totals.readBytes / observedSeconds,
        writeBytesPerSecond: totals.writtenBytes / observedSeconds,
        observedSeconds,
      }
    : null;
  const lookups = cache.hits + cache.misses;
  const latencyIssue = (kind: 'read' | 'write', l: typeof readLatencyMs, threshold: number, recommendation: string) => {
    if (!l || l.p99 <= threshold) return;
    issues.push({
      check: `latency.${kind}`,
      severity: 'warning',
      category: 'performance',
      value: Math.round(l.p99),
      threshold,
      recommendation,
      runbook: RUNBOOKS.latency,
      message: `fragment ${kind}s: p99 latency ${l.p99.toFixed(1)} ms over the last ${l.samples} ${kind}s exceeds ${threshold} ms`,
    });
  };
  latencyIssue(
    'read',
    readLatencyMs,
    t.read_latency_warning_ms,
    "find the slow disk with 'dynamicfs list-disks' (slow operations degrade it) and 'dynamicfs probe-disks'; move hot data off it or replace it",
  );
  latencyIssue(
    'write',
    writeLatencyMs,
    t.write_latency_warning_ms,
    "check the disks with 'dynamicfs probe-disks'; lower reliability.rebuild_bandwidth or scrub_bandwidth if a rebuild or scrub competes",
  );

  // Reliability
  const disks = pool.disks.all().map((d) => {
    const errors = d.readErrors + d.writeErrors + d.checksumErrors;
    const ageDays = Math.max((now - d.addedAt) / DAY, 1 / 1440);
    return {
      id: d.id,
      health: d.health,
      errors,
      ageDays,
      errorsPerDay: errors / ageDays,
      // Mean time between observed errors as a crude time-to-failure estimate; without errors only a lower bound is known.
      mttfDays: errors > 0 ? ageDays / errors : null,
      mttfNote:
        errors > 0 ? `${errors} error(s) in ${ageDays.toFixed(2)} days` : `no errors in ${ageDays.toFixed(2)} days (MTTF above that)`,
    };
  });
  for (const d of disks) {
    const real = pool.disks.get(d.id);
    if (d.health === 'failed') {
      issues.push({
        check: 'disk.failed',
        severity: 'error',
        category: 'reliability',
        subject: d.id,
        value: d.health,
        threshold: null,
        message: `disk ${d.id} (${real?.path}) is failed: ${real?.healthReason ?? ''}`,
        recommendation: `replace it: 'dynamicfs replace-disk ${pool.dir} ${d.id} NEW_DIR' (or 'dynamicfs rebuild ${pool.dir}' then 'remove-disk')`,
        runbook: RUNBOOKS.diskErrors,
      });
    } else if (d.errors >= t.disk_error_warning) {
      const severe = d.health === 'suspect' || d.health === 'degraded';
      issues.push({
        check: 'disk.errors',
        severity: severe ? 'error' : 'warning',
        category: 'reliability',
        subject: d.id,
        value: d.errors,
        threshold: t.disk_error_warning,
        message: `disk ${d.id} (${real?.path}) has ${d.errors} I/O errors (${d.errorsPerDay.toFixed(1)}/day; warning at ${t.disk_error_warning}); state ${d.health}`,
        recommendation: `run 'dynamicfs probe-disks ${pool.dir}' and 'dynamicfs scrub ${pool.dir} --repair'; if errors keep rising, 'dynamicfs replace-disk ${pool.dir} ${d.id} NEW_DIR'`,
        runbook: RUNBOOKS.diskErrors,
      });
    }
  }
  // Failure domains: redundancy that one device failure can defeat.
  const fd = status.failureDomains;
  const together = fd.domains
    .filter((d) => d.disks.length > 1)
    .map((d) => `disks ${d.disks.join(' and ')} share device ${d.name}`)
    .join('; ');
  for (const sh of fd.short) {
    issues.push({
      check: 'failure-domains.short',
      severity: fd.allowShared ? 'warning' : 'error',
      category: 'reliability',
      subject: sh.policy,
      value: fd.count,
      threshold: sh.needs,
      message: fd.allowShared
        ? `redundancy ${sh.policy} is illusory: ${sh.needs} fragments on ${fd.count} failure domain(s)${together ? `: ${together}` : ''}`
        : `writes under ${sh.policy} fail: it needs ${sh.needs} failure domains and the pool has ${fd.count}${together ? ` (${together})` : ''}`,
      recommendation: `add disks on other devices ('dynamicfs add-disk ${pool.dir} DIR'), or, if the disks are in fact separate, name their domains ('dynamicfs set-failure-domain ${pool.dir} DISK NAME')`,
      runbook: RUNBOOKS.failureDomains,
    });
  }
  if (fd.sharedExtents > 0) {
    issues.push({
      check: 'failure-domains.extents',
      severity: 'warning',
      category: 'reliability',
      value: fd.sharedExtents,
      threshold: 0,
      message: `${fd.sharedExtents} extent(s) have fragments together in one failure domain${together ? ` (${together})` : ''}: one device failure can take more of them than the policy tolerates`,
      recommendation: `add disks on other devices; files written after that spread their new extents over the domains (rewrite or copy the old files to move theirs)`,
      runbook: RUNBOOKS.failureDomains,
    });
  }
  const rebuildHistory = pool.store.history<RebuildSample>('rebuild');
  const attempted = rebuildHistory.reduce((s, r) => s + r.data.attempted, 0);
  const rebuilt = rebuildHistory.reduce((s, r) => s + r.data.rebuilt, 0);
  const failed = rebuildHistory.reduce((s, r) => s + r.data.failed, 0);
  const successRate = attempted > 0 ? rebuilt / attempted : null;
  if (successRate !== null && successRate * 100 < t.rebuild_success_warning_percent) {
    issues.push({
      check: 'rebuild.success',
      severity: 'error',
      category: 'reliability',
      value: Math.round(successRate * 1000) / 10,
      threshold: t.rebuild_success_warning_percent,
      message: `rebuilds re-protected ${rebuilt} of ${attempted} extents (${pct(successRate)}, below ${t.rebuild_success_warning_percent}%)`,
      recommendation: `see which extents failed with 'dynamicfs status ${pool.dir}'; add healthy disks ('dynamicfs add-disk') if placement failed, then 'dynamicfs rebuild ${pool.dir}'`,
      runbook: RUNBOOKS.rebuildSuccess,
    });
  }
  const last = lastScrub(pool);
  const interval = config.reliability.scrub_interval * 1000;
  const lastAt = last ? Date.parse(last.finishedAt) : null;
  const since = now - (lastAt ?? Date.parse(pool.identity.createdAt));
  const overdue = since > interval * t.scrub_overdue_factor;
  if (overdue) {
    issues.push({
      check: 'scrub.overdue',
      severity: 'warning',
      category: 'reliability',
      value: Math.round((since / DAY) * 100) / 100,
      threshold: Math.round(((interval * t.scrub_overdue_factor) / DAY) * 100) / 100,
      message: `${last ? `the last scrub finished ${(since / DAY).toFixed(2)} days ago` : `no scrub in the ${(since / DAY).toFixed(2)} days since the pool was created`}; due every ${(interval / DAY).toFixed(2)} days`,
      recommendation: `run 'dynamicfs scrub ${pool.dir} --repair'; keep reliability.auto_scrub on so the daemon schedules it`,
      runbook: RUNBOOKS.scrubOverdue,
    });
  }
  if (last && last.extents.unrecoverable === 0 && last.issues > 0 && !last.repair) {
    issues.push({
      check: 'scrub.findings',
      severity: 'warning',
      category: 'reliability',
      value: last.issues,
      threshold: 0,
      message: `the last scrub found ${last.issues} bad or missing fragment(s) and did not repair them`,
      recommendation: `run 'dynamicfs scrub ${pool.dir} --repair'`,
      runbook: RUNBOOKS.diskErrors,
    });
  }
  if (status.extents.unrecoverable > 0) {
    const files = [...new Set(status.unrecoverable.map((u) => u.path))];
    issues.push({
      check: 'extents.unrecoverable',
      severity: 'critical',
      category: 'reliability',
      value: status.extents.unrecoverable,
      threshold: 0,
      message: `${status.extents.unrecoverable} extent(s) unrecoverable in ${files.length} file(s): ${files.slice(0, 5).map(printableName).join(', ')}${files.length > 5 ? ', ...' : ''}`,
      recommendation:
        'bring back a failed disk if it can be read (set it healthy after a probe), else restore those byte ranges from backup; status lists them',
      runbook: RUNBOOKS.unrecoverable,
    });
  }
  if (status.extents.degraded > 0) {
    issues.push({
      check: 'extents.degraded',
      severity: 'warning',
      category: 'reliability',
      value: status.extents.degraded,
      threshold: 0,
      message: `${status.extents.degraded} extent(s) degraded (${formatBytes(status.bytesAtRisk)} at risk): redundancy reduced, data still readable`,
      recommendation: `run 'dynamicfs rebuild ${pool.dir}' (automatic when reliability.auto_rebuild is on and a disk failed)`,
      runbook: RUNBOOKS.unrecoverable,
    });
  }

  // Capacity
  // Each filesystem counted once: three directories of one disk are that disk, not three.
  const usable = status.disks.filter((d) => d.health !== 'failed');
  const capTotal = status.capacity.raw;
  const usedTotal = status.capacity.used;
  const poolUtil = ratio(usedTotal, capTotal);
  const tiers: Record<string, { used: number; capacity: number; utilisation: number }> = {};
  const live = pool.disks.all().filter((d) => d.health !== 'failed');
  for (const tier of new Set(live.map((d) => d.tier))) {
    const in_ = live.filter((d) => d.tier === tier);
    const used = in_.reduce((s, d) => s + d.used, 0);
    const capacity = rawSpace(in_).capacity;
    tiers[tier] = { used, capacity, utilisation: ratio(used, capacity) };
  }
  const usage = pool.store.history<UsageSample>('usage');
  const growth = growthPerDay(usage);
  const free = status.capacity.free;
  const predictedFullAt = growth && growth > 0 ? new Date(now + (free / growth) * DAY).toISOString() : null;
  const capacityIssue = (check: string, subject: string | undefined, util: number, used: number, cap: number, what: string) => {
    const p = util * 100;
    const severity = p >= t.capacity_critical_percent ? 'critical' : p >= t.capacity_warning_percent ? 'warning' : null;
    if (!severity) return;
    issues.push({
      check,
      subject,
      severity: check === 'capacity.disk' && severity === 'critical' ? 'error' : severity,
      category: 'capacity',
      value: Math.round(p * 10) / 10,
      threshold: severity === 'critical' ? t.capacity_critical_percent : t.capacity_warning_percent,
      message: `${what} is ${pct(util)} full (${formatBytes(used)} of ${formatBytes(cap)}; ${severity} at ${severity === 'critical' ? t.capacity_critical_percent : t.capacity_warning_percent}%)`,
      recommendation:
        check === 'capacity.disk'
          ? `add disks ('dynamicfs add-disk ${pool.dir} DIR') so new fragments spread, or move this disk's data with 'dynamicfs replace-disk' onto a larger one`
          : `add disks ('dynamicfs add-disk ${pool.dir} DIR'), delete data, or lower the redundancy of cold directories ('dynamicfs set-policy')`,
      runbook: RUNBOOKS.capacity,
    });
  };
  capacityIssue('capacity.pool', undefined, poolUtil, usedTotal, capTotal, `pool ${name}`);
  for (const d of usable) capacityIssue('capacity.disk', d.id, ratio(d.used, d.capacity), d.used, d.capacity, `disk ${d.id} (${d.path})`);
  if (predictedFullAt && Date.parse(predictedFullAt) - now < 7 * DAY) {
    issues.push({
      check: 'capacity.forecast',
      severity: 'warning',
      category: 'capacity',
      value: predictedFullAt,
      threshold: '7 days',
      message: `at the recorded growth of ${formatBytes(growth ?? 0)}/day the pool is full by ${predictedFullAt}`,
      recommendation: `add disks before then ('dynamicfs add-disk ${pool.dir} DIR')`,
      runbook: RUNBOOKS.capacity,
    });
  }

  issues.sort(bySeverity);
  return {
    pool: name,
    generatedAt: new Date(now).toISOString(),
    overall: overallHealth(issues),
    performance: { readLatencyMs, writeLatencyMs, throughput, cache: { ...cache, hitRatio: lookups ? cache.hits / lookups : null } },
    reliability: {
      disks,
      rebuilds: { runs: rebuildHistory.length, attempted, rebuilt, failed, successRate },
      scrub: {
        last: last?.finishedAt ?? null,
        ageDays: lastAt ? (now - lastAt) / DAY : null,
        issues: last?.issues ?? 0,
        repaired: last?.repaired ?? 0,
        unrecoverable: last?.extents.unrecoverable ?? 0,
        overdue,
      },
      extents: status.extents,
      bytesAtRisk: status.bytesAtRisk,
    },
    capacity: {
      pool: { used: usedTotal, capacity: capTotal, utilisation: poolUtil },
      disks: usable.map((d) => ({ id: d.id, tier: d.tier, used: d.used, capacity: d.capacity, utilisation: ratio(d.used, d.capacity) })),
      tiers,
      growthBytesPerDay: growth,
      predictedFullAt,
      samples: usage.length,
    },
    issues,
  };
}
