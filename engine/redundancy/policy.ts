import { MAX_K, MAX_M } from '../util/rs-limits.js';
import { UsageError } from '../util/errors.js';

export type RedundancyPolicy = { kind: 'replication'; copies: number } | { kind: 'erasure'; data: number; parity: number };

/** The shape of a policy as a JSON-schema pattern (config files, CRDs); parsePolicy checks the numbers. */
export const POLICY_PATTERN = '^(replication:[1-9][0-9]?|erasure:[1-9][0-9]?\\+[0-9][0-9]?)$';

const REPLICATION = /^replication:(\d+)$/;
const ERASURE = /^erasure:(\d+)\+(\d+)$/;

/** Parses `replication:N` or `erasure:k+m`; the error names the bad value and the accepted forms. */
export function parsePolicy(text: string): RedundancyPolicy {
  const rep = REPLICATION.exec(text);
  if (rep) {
    const copies = Number(rep[1]);
    if (copies < 1 || copies > 16) throw new UsageError(`redundancy '${text}': copies must be between 1 and 16`);
    return { kind: 'replication', copies };
  }
  const ec = ERASURE.exec(text);
  if (ec) {
    const data = Number(ec[1]);
    const parity = Number(ec[2]);
    if (data < 1 || data > MAX_K) throw new UsageError(`redundancy '${text}': k must be between 1 and ${MAX_K}`);
    if (parity < 1 || parity > MAX_M) throw new UsageError(`redundancy '${text}': m must be between 1 and ${MAX_M}`);
    return { kind: 'erasure', data, parity };
  }
  throw new UsageError(
    `redundancy '${text}' is not a policy (expected replication:N such as replication:2, or erasure:k+m such as erasure:4+2)`,
  );
}

export function formatPolicy(p: RedundancyPolicy): string {
  return p.kind === 'replication' ? `replication:${p.copies}` : `erasure:${p.data}+${p.parity}`;
}

/** Number of fragments (and so of distinct disks) an extent needs. */
export function fragmentCount(p: RedundancyPolicy): number {
  return p.kind === 'replication' ? p.copies : p.data + p.parity;
}

/** How many fragments may be lost while the extent stays readable. */
export function toleratedLosses(p: RedundancyPolicy): number {
  return p.kind === 'replication' ? p.copies - 1 : p.parity;
}

/** Fraction of raw bytes that holds user data. */
export function efficiency(p: RedundancyPolicy): number {
  return p.kind === 'replication' ? 1 / p.copies : p.data / (p.data + p.parity);
}
