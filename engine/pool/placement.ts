import { fsError } from '../util/errors.js';
import { diskFree, type Disk } from './disk-set.js';
import { domainLabel } from './failure-domain.js';
import { rawSpace } from './capacity.js';

export interface PlacementOptions {
  /**
   * Fragments of one extent may share a failure domain when the domains are too few (the pool's
   * reliability.allow_shared_failure_domains, for tests and demos): distinct domains still come first.
   */
  sharedDomains?: boolean;
  random?: () => number;
}

/** `vda (disk-1, disk-2), vdb (disk-3)`: the failure domains of some disks, for an error message. */
export function describeDomains(disks: Disk[]): string {
  const by = new Map<string, string[]>();
  for (const d of disks) by.set(d.domain, [...(by.get(d.domain) ?? []), d.id]);
  return [...by].map(([k, ids]) => `${domainLabel(k)} (${ids.join(', ')})`).join(', ');
}

/**
 * Picks `count` distinct disks in distinct failure domains for fragments of `fragmentBytes` each,
 * weighted by free space. Too few disks, or too few domains, is ENOSPC with a message that names them.
 */
export function chooseDisks(
  candidates: Disk[],
  count: number,
  fragmentBytes: number,
  policyName: string,
  options: PlacementOptions = {},
): Disk[] {
  const random = options.random ?? Math.random;
  const healthy = candidates.length;
  const fit = candidates.filter((d) => diskFree(d) >= fragmentBytes);
  if (fit.length < count) {
    const why =
      healthy < count
        ? `the pool has ${healthy} healthy disk${healthy === 1 ? '' : 's'}`
        : `only ${fit.length} healthy disk${fit.length === 1 ? ' has' : 's have'} room for a ${fragmentBytes}-byte fragment`;
    throw fsError('ENOSPC', `policy ${policyName} needs ${count} distinct disks but ${why}`);
  }
  const domains = new Set(fit.map((d) => d.domain)).size;
  if (domains < count && !options.sharedDomains) {
    throw fsError(
      'ENOSPC',
      `policy ${policyName} needs ${count} failure domains but the healthy disks with room are in ${domains}: ${describeDomains(fit)}. ` +
        'Add disks on other devices, name the real domains with --failure-domain, or allow shared domains (reliability.allow_shared_failure_domains)',
    );
  }
  // Weighted sampling without replacement, by failure domain: a domain is picked in proportion to its
  // free bytes (a filesystem counted once, however many directories of it are disks), then one of its
  // disks in proportion to its own; so disks of mixed sizes fill in proportion to their free space,
  // and a device split into several directories is not picked several times as often.
  const chosen: Disk[] = [];
  let left = fit;
  while (chosen.length < count) {
    // Shared domains allowed and every domain used: the disks not chosen yet, in any domain.
    if (left.length === 0) left = fit.filter((d) => !chosen.includes(d));
    const domains = new Map<string, Disk[]>();
    for (const d of left) domains.set(d.domain, [...(domains.get(d.domain) ?? []), d]);
    const groups = [...domains.values()];
    const group = weighted(
      groups,
      groups.map((g) => rawSpace(g).free),
      random,
    );
    const d = weighted(group, group.map(diskFree), random);
    chosen.push(d);
    left = left.filter((x) => x.domain !== d.domain);
  }
  return chosen;
}

/** One of `items`, picked with probability proportional to its weight. */
function weighted<T>(items: T[], weights: number[], random: () => number): T {
  const total = weights.reduce((s, w) => s + w, 0);
  let r = random() * total;
  for (let i = 0; i < items.length; i++) {
    r -= weights[i];
    if (r < 0) return items[i];
  }
  return items[items.length - 1];
}
