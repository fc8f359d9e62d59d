import { fsError } from '../util/errors.js';
import { diskFree, type Disk } from './disk-set.js';
import { domainLabel } from './failure-domain.js';

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
export function chooseDisks(candidates: Disk[], count: number, fragmentBytes: number, policyName: string, options: PlacementOptions = {}): Disk[] {
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
    throw fsError('ENOSPC', `policy ${policyName} needs ${count} failure domains but the healthy disks with room are in ${domains}: ${describeDomains(fit)}. ` +
      'Add disks on other devices, name the real domains with --failure-domain, or allow shared domains (reliability.allow_shared_failure_domains)');
  }
  // Weighted sampling without replacement: each pick is proportional to remaining free bytes, so disks
  // of mixed sizes fill in proportion to their free space; a pick takes its whole domain out of the draw.
  let pool = fit.map((d) => ({ d, w: diskFree(d) }));
  const chosen: Disk[] = [];
  while (chosen.length < count) {
    // Shared domains allowed and every domain used: the disks not chosen yet, in any domain.
    if (pool.length === 0) pool = fit.filter((d) => !chosen.includes(d)).map((d) => ({ d, w: diskFree(d) }));
    const total = pool.reduce((s, x) => s + x.w, 0);
    let r = random() * total;
    let pick = pool.length - 1;
    for (let j = 0; j < pool.length; j++) {
      r -= pool[j].w;
      if (r < 0) {
        pick = j;
        break;
      }
    }
    const d = pool[pick].d;
    chosen.push(d);
    pool = pool.filter((x) => x.d.domain !== d.domain);
  }
  return chosen;
}
