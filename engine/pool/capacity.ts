import { efficiency, fragmentCount, type RedundancyPolicy } from '../redundancy/policy.js';
import { diskCapacity, diskFree, type Disk } from './disk-set.js';

export interface Space {
  capacity: number;
  free: number;
}

/**
 * Raw bytes of some disks, each filesystem counted once: several disk directories on one filesystem
 * share its free space (their caps still apply, and their sum cannot pass the filesystem's size).
 */
export function rawSpace(disks: Disk[]): Space {
  const byFs = new Map<string, Disk[]>();
  for (const d of disks) byFs.set(d.fs, [...(byFs.get(d.fs) ?? []), d]);
  let capacity = 0;
  let free = 0;
  for (const group of byFs.values()) {
    const fsTotal = Math.max(...group.map((d) => d.fsTotal));
    const fsFree = Math.max(...group.map((d) => d.fsFree)) - group.reduce((s, d) => s + d.reserved, 0);
    capacity += Math.min(
      fsTotal,
      group.reduce((s, d) => s + diskCapacity(d), 0),
    );
    free += Math.max(
      0,
      Math.min(
        fsFree,
        group.reduce((s, d) => s + diskFree(d), 0),
      ),
    );
  }
  return { capacity, free };
}

/**
 * The most fragment bytes per domain when every extent puts its n fragments in n distinct domains of
 * `room` bytes each: the largest s with sum(min(room_i, s)) >= n * s. With the rooms sorted largest
 * first, s = min over t < n of (sum of all but the t largest) / (n - t): capping the t largest domains
 * at s, the others must hold the remaining n - t fragments of every extent.
 */
function spreadable(room: number[], n: number): number {
  if (room.length < n) return 0;
  const sorted = [...room].sort((a, b) => b - a);
  let rest = sorted.reduce((a, b) => a + b, 0);
  let best = Infinity;
  for (let t = 0; t < n; t++) {
    best = Math.min(best, rest / (n - t));
    rest -= sorted[t];
  }
  return best;
}

/**
 * Usable bytes (data, not fragments) under `policy` on these disks: fragments of one extent in
 * distinct failure domains, so a domain larger than the others cannot be filled. A domain's room is
 * its raw space, each filesystem counted once; a filesystem that several domains use (directories
 * the administrator named apart) is shared out evenly between them. Where the pool allows shared
 * domains, the raw space scaled by the policy's overhead, as if every disk were a domain.
 */
export function usableSpace(disks: Disk[], policy: RedundancyPolicy, sharedDomains: boolean): Space {
  if (sharedDomains) {
    const raw = rawSpace(disks);
    const eff = efficiency(policy);
    return { capacity: Math.floor(raw.capacity * eff), free: Math.floor(raw.free * eff) };
  }
  const domainsOfFs = new Map<string, Set<string>>();
  for (const d of disks) domainsOfFs.set(d.fs, (domainsOfFs.get(d.fs) ?? new Set()).add(d.domain));
  const room = new Map<string, Space>();
  for (const [fs, domains] of domainsOfFs) {
    for (const domain of domains) {
      const here = rawSpace(disks.filter((d) => d.fs === fs && d.domain === domain));
      const whole = rawSpace(disks.filter((d) => d.fs === fs));
      const r = room.get(domain) ?? { capacity: 0, free: 0 };
      room.set(domain, {
        capacity: r.capacity + Math.min(here.capacity, whole.capacity / domains.size),
        free: r.free + Math.min(here.free, whole.free / domains.size),
      });
    }
  }
  const spaces = [...room.values()];
  const n = fragmentCount(policy);
  // Each fragment carries 1/k of an extent's data: efficiency * n.
  const perFragment = efficiency(policy) * n;
  return {
    capacity: Math.floor(
      spreadable(
        spaces.map((s) => s.capacity),
        n,
      ) * perFragment,
    ),
    free: Math.floor(
      spreadable(
        spaces.map((s) => s.free),
        n,
      ) * perFragment,
    ),
  };
}

/** How many failure domains some disks are in. */
export function domainCount(disks: Disk[]): number {
  return new Set(disks.map((d) => d.domain)).size;
}
