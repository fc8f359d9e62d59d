export type Severity = 'info' | 'warning' | 'error' | 'critical';
export type Category = 'performance' | 'reliability' | 'capacity';

/** Runbooks in docs/runbooks/, one per kind of trouble. */
export const RUNBOOKS = {
  diskErrors: 'docs/runbooks/high-disk-error-rate.md',
  rebuildSuccess: 'docs/runbooks/low-rebuild-success-rate.md',
  latency: 'docs/runbooks/high-read-latency.md',
  capacity: 'docs/runbooks/capacity-approaching-full.md',
  unrecoverable: 'docs/runbooks/unrecoverable-extents.md',
  scrubOverdue: 'docs/runbooks/scrub-overdue.md',
  failureDomains: 'docs/runbooks/shared-failure-domains.md',
} as const;

export interface DiagnosticIssue {
  /** Stable identifier of the check, such as `capacity.pool` or `disk.errors`. */
  check: string;
  severity: Severity;
  category: Category;
  /** What is wrong, with the measured value and the threshold. */
  message: string;
  value: number | string;
  threshold: number | string | null;
  recommendation: string;
  runbook: string;
  subject?: string;
}

const RANK: Record<Severity, number> = { info: 0, warning: 1, error: 2, critical: 3 };

export function overallHealth(issues: DiagnosticIssue[]): 'healthy' | 'warning' | 'critical' {
  const worst = Math.max(-1, ...issues.map((i) => RANK[i.severity]));
  return worst >= RANK.critical ? 'critical' : worst >= RANK.warning ? 'warning' : 'healthy';
}

export function bySeverity(a: DiagnosticIssue, b: DiagnosticIssue): number {
  return RANK[b.severity] - RANK[a.severity];
}
