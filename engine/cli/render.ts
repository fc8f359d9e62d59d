import type { DiskReport, PoolStatus } from '../report/status.js';
import type { FsckReport } from '../check/fsck.js';
import { formatBytes } from '../util/units.js';
import { printableName } from '../util/byte-names.js';
import type { DrainReport } from '../heal/drain.js';
import type { RebuildReport } from '../heal/rebuild.js';
import type { ScrubReport } from '../heal/scrub.js';

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function renderDisks(disks: DiskReport[]): string {
  if (disks.length === 0) return 'no disks; add one with: dynamicfs add-disk POOL DIR';
  const rows = [['DISK', 'PATH', 'TIER', 'DOMAIN', 'CAPACITY', 'USED', 'FREE', 'HEALTH', 'ERRORS r/w/c', 'SINCE / REASON']];
  for (const d of disks) {
    rows.push([
      d.id,
      d.path,
      d.tier,
      d.domainNamed ? `${d.failureDomain} (named)` : d.failureDomain,
      formatBytes(d.capacity) + (d.capped ? ' (cap)' : ''),
      formatBytes(d.used),
      formatBytes(d.free),
      d.health,
      `${d.errors.read}/${d.errors.write}/${d.errors.checksum}`,
      `${d.healthChangedAt}${d.healthReason ? ' ' + d.healthReason : ''}`,
    ]);
  }
  return table(rows);
}

function renderMounted(s: PoolStatus): string {
  if (s.mounted) return `${s.mounted.mountpoint ?? '(daemon)'} by pid ${s.mounted.pid}`;
  if (s.mountGone)
    return `no: the mount at ${s.mountGone.mountpoint} was removed from outside; pid ${s.mountGone.pid} still owns the pool: it serves files still open through the mount and bind mounts of volumes, and exits once none is left (dynamicfs unmount ${s.pool.dir} ends it now)`;
  const last = s.lastUnmount;
  if (!last) return 'no';
  return `no (the last mount, at ${last.mountpoint} by pid ${last.pid}, ended ${last.at}: ${last.fromOutside ? 'removed from outside' : last.reason})`;
}

export function renderStatus(s: PoolStatus): string {
  const lines = [
    `pool     ${s.pool.name} (${s.pool.id})`,
    `dir      ${s.pool.dir}`,
    `mounted  ${renderMounted(s)}`,
    `policy   ${s.pool.defaultPolicy}, extent ${formatBytes(s.pool.extentSize)}, checksum ${s.pool.checksum}`,
    `health   ${s.health.toUpperCase()}`,
    ...s.reasons.map((r) => `         - ${r}`),
    `capacity raw ${formatBytes(s.capacity.raw)}, used ${formatBytes(s.capacity.used)}, free ${formatBytes(s.capacity.free)} (usable ${formatBytes(s.capacity.usableFree)} after redundancy)`,
    `domains  ${s.failureDomains.count} failure domain(s): ${s.failureDomains.domains.map((d) => `${d.name} (${d.disks.join(', ')})`).join(', ') || 'none'}${s.failureDomains.allowShared ? '; shared domains allowed' : ''}`,
    `extents  ${s.extents.total} total: ${s.extents.healthy} healthy, ${s.extents.degraded} degraded, ${s.extents.unrecoverable} unrecoverable; ${formatBytes(s.bytesAtRisk)} at risk`,
  ];
  if (s.operation) {
    const o = s.operation;
    lines.push(`running  ${o.kind} since ${o.startedAt}: ${o.extentsDone}/${o.extentsTotal} extents, ${formatBytes(o.bytes)}`);
  }
  if (s.lastScrub) {
    const l = s.lastScrub;
    lines.push(
      `scrub    last ${l.finishedAt}${l.repair ? ' (repair)' : ''}: ${l.extents.scanned} extents, ${formatBytes(l.bytesRead)} read, ${l.issues} issue(s), ${l.repaired} repaired, ${l.extents.unrecoverable} unrecoverable`,
    );
  } else {
    lines.push('scrub    never run (dynamicfs scrub POOL)');
  }
  if (s.unrecoverable.length) {
    lines.push('unrecoverable ranges:');
    for (const u of s.unrecoverable) lines.push(`  ${printableName(u.path)} bytes ${u.start}-${u.end - 1}`);
  }
  if (s.degradedFiles.length)
    lines.push(
      `files with reduced redundancy: ${s.degradedFiles.length} (${s.degradedFiles.slice(0, 5).map(printableName).join(', ')}${s.degradedFiles.length > 5 ? ', ...' : ''})`,
    );
  lines.push('', renderDisks(s.disks));
  return lines.join('\n');
}

export function renderFsck(r: FsckReport): string {
  const head =
    `fsck: ${r.clean ? 'clean' : `${r.problems.length} problem(s)`}; checked ${r.checked.inodes} inodes, ${r.checked.extents} extents, ${r.checked.fragments} fragments, ${r.checked.fragmentFiles} fragment files` +
    (r.reclaimed ? `; reclaimed ${r.reclaimed} orphan fragment(s)` : '');
  return [
    head,
    ...r.problems.slice(0, 50).map((p) => `  ${p.kind}: ${p.detail}`),
    ...(r.problems.length > 50 ? [`  ... and ${r.problems.length - 50} more`] : []),
  ].join('\n');
}

export function renderScrub(r: ScrubReport): string {
  const lines = [
    `scrub ${r.repair ? 'with repair ' : ''}${r.startedAt} -> ${r.finishedAt}: ${r.extents.scanned} extents, ${formatBytes(r.bytesRead)} read`,
    `  ${r.extents.healthy} healthy, ${r.extents.degraded} degraded, ${r.extents.unrecoverable} unrecoverable; ${r.issues.length} bad fragment(s), ${r.repaired} repaired`,
  ];
  for (const i of r.issues.slice(0, 100)) {
    lines.push(
      `  ${i.repaired ? 'repaired' : 'BAD     '} ${i.paths.map(printableName).join(',') || `inode ${i.ino}`} extent ${i.extent} (bytes ${i.offset}-) fragment ${i.eid}.${i.slot} on ${i.disk}: ${i.problem}`,
    );
  }
  if (r.issues.length > 100) lines.push(`  ... and ${r.issues.length - 100} more (--json lists all)`);
  for (const u of r.unrecoverable) lines.push(`  UNRECOVERABLE ${printableName(u.path)} bytes ${u.start}-${u.end - 1}`);
  return lines.join('\n');
}

export function renderRebuild(r: RebuildReport): string {
  const lines = [
    `rebuild ${r.startedAt} -> ${r.finishedAt}: ${r.extents.scanned} extents scanned, ${r.extents.needingRebuild} needed rebuilding`,
    `  ${r.extents.rebuilt} rebuilt, ${r.extents.failed} failed; ${r.fragmentsWritten} fragment(s), ${formatBytes(r.bytesWritten)} written`,
  ];
  for (const f of r.failures.slice(0, 50)) lines.push(`  FAILED inode ${f.ino} extent ${f.extent}: ${f.error}`);
  return lines.join('\n');
}

export function renderDrain(r: DrainReport): string {
  const lines = [
    `remove-disk ${r.disk} (${r.path}): ${r.moved} of ${r.fragments} fragment(s) moved and verified, ${formatBytes(r.bytesMoved)}; ${r.removed ? 'disk removed from the pool' : 'disk NOT removed'}`,
  ];
  for (const f of r.failures.slice(0, 50)) lines.push(`  FAILED fragment ${f.eid}.${f.slot}: ${f.error}`);
  return lines.join('\n');
}
