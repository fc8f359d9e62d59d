import { fsError } from '../util/errors.js';
import { diskFree, type Disk } from './disk-set.js';

/** Picks `count` distinct disks for fragments of `fragmentBytes` each, weighted by free space. */
export function chooseDisks(candidates: Disk[], count: number, fragmentBytes: number, policyName: string, random: () => number = Math.random): Disk[] {
  const healthy = candidates.length;
  const fit = candidates.filter((d) => diskFree(d) >= fragmentBytes);
  if (fit.length < count) {
    const why =
      healthy < count
        ? `the pool has ${healthy} healthy disk${healthy === 1 ? '' : 's'}`
        : `only ${fit.length} healthy disk${fit.length === 1 ? ' has' : 's have'} room for a ${fragmentBytes}-byte fragment`;
    throw fsError('ENOSPC', `policy ${policyName} needs ${count} distinct disks but ${why}`);
  }
  // Weighted sampling without replacement: each pick is proportional to remaining free bytes,
  // so disks of mixed sizes fill in proportion to their free space.
  const pool = fit.map((d) => ({ d, w: diskFree(d) }));
  const chosen: Disk[] = [];
  for (let i = 0; i < count; i++) {
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
    chosen.push(pool[pick].d);
    pool.splice(pick, 1);
  }
  return chosen;
}
