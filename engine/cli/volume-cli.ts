import { type Command } from 'commander';
import type { VolumeInfo } from '../control/protocol.js';
import { UsageError } from '../util/errors.js';
import { formatBytes, parseSize } from '../util/units.js';
import { emit, onPool } from './on-pool.js';

function render(v: VolumeInfo): string {
  return `${v.name.padEnd(24)} ${formatBytes(v.usage.bytes).padStart(10)} of ${formatBytes(v.capacity).padEnd(10)} ${v.policy.padEnd(14)} ${(v.tier ?? 'any').padEnd(5)} ${v.published.length ? `published at ${v.published.join(', ')}` : ''}`;
}

/** `dynamicfs volume ...`: the volumes (quota'd top-level directories) the CSI driver provisions, by hand. */
export function registerVolumeCommands(program: Command): void {
  const volume = program.command('volume').description('volumes: top-level directories with a capacity (quota), a policy and a tier');
  volume
    .command('list')
    .argument('<pool>')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string) => {
      const r = await onPool(poolDir, 'volume-list', {});
      emit(r, r.volumes.length ? r.volumes.map(render).join('\n') : 'no volumes');
    });
  volume
    .command('create')
    .argument('<pool>')
    .argument('<name>')
    .requiredOption('--capacity <size>', 'quota, e.g. 10GiB')
    .option('--redundancy <policy>', 'replication:N or erasure:k+m (default: the pool default)')
    .option('--tier <tier>', 'place its data on disks of this tier only')
    .option('--inodes <n>', 'files, directories and links it may hold (default: one per 16 KiB of capacity, at least 4096)')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string, name: string, o: { capacity: string; redundancy?: string; tier?: string; inodes?: string }) => {
      const inodes = o.inodes === undefined ? undefined : Number(o.inodes);
      if (inodes !== undefined && (!/^[0-9]+$/.test(o.inodes ?? '') || !Number.isSafeInteger(inodes) || inodes < 1))
        throw new UsageError(`--inodes '${o.inodes}' is not a positive whole number`);
      const r = await onPool(poolDir, 'volume-create', {
        name,
        capacity: parseSize(o.capacity, '--capacity'),
        policy: o.redundancy,
        tier: o.tier,
        inodes,
      });
      emit(r, `${r.created ? 'created' : 'exists'}: ${render(r.volume)}`);
    });
  volume
    .command('expand')
    .argument('<pool>')
    .argument('<name>')
    .requiredOption('--capacity <size>', 'new quota (only grows)')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string, name: string, o: { capacity: string }) => {
      const r = await onPool(poolDir, 'volume-expand', { name, capacity: parseSize(o.capacity, '--capacity') });
      emit(r, render(r.volume));
    });
  volume
    .command('delete')
    .argument('<pool>')
    .argument('<name>')
    .option('--yes', 'confirm: every file in the volume is deleted')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string, name: string, o: { yes?: boolean }) => {
      if (!o.yes) throw new UsageError(`deleting volume ${name} deletes every file in it; add --yes to confirm`);
      const r = await onPool(poolDir, 'volume-delete', { name });
      emit(r, r.deleted ? `deleted ${name}` : `no volume ${name}`);
    });
}
