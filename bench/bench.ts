/**
 * `npm run bench`: DynamicFS side by side with its references, in one run, on the same kind of
 * directories. Writes and reads a file in 1 MiB blocks with dd, caches dropped in between, and
 * prints MiB/s and ratios. Absolute numbers on shared machines are noise; the ratios are the figure.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_READ_AHEAD_KB, isMounted, lazyUnmount } from '../engine/fuse/mount.js';
import { configureLogging } from '../engine/observability/logger.js';

// The bench fails disks on purpose; its own engine's log lines would only clutter the table.
configureLogging({ enabled: false });

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(here, '../engine/cli/main.js');
const NULL_FUSE = path.resolve(here, 'null-fuse.js');
const SIZE_MIB = Number(process.env.BENCH_SIZE_MIB ?? 1024);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const json = process.argv.includes('--json');

interface HealFigures { rawReadMiBs: number; scrubMiBs: number; rebuildMiBs: number; rebuildReadMiBs: number; scrubBytes: number; rebuildBytes: number }

interface Target {
  name: string;
  /** Scrub and rebuild throughput against reading the same fragment files straight from the disks. */
  heal?(): Promise<HealFigures>;
  /** Makes the target ready and returns the directory to write into. */
  up(): Promise<string>;
  /** Between the write and the read: drop whatever the target caches itself. */
  cycle(): Promise<void>;
  down(): Promise<void>;
}

function dropCaches(): void {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
  } catch {
    process.stderr.write('warning: cannot drop caches (not root?): read figures include the page cache\n');
  }
}

function timeDd(args: string[]): number {
  const start = process.hrtime.bigint();
  const r = spawnSync('dd', [...args, 'status=none'], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`dd ${args.join(' ')} failed: ${r.stderr.toString()}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function waitMounted(mnt: string, child?: ChildProcess): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await isMounted(mnt)) return;
    if (child && child.exitCode !== null) throw new Error(`${mnt}: server exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${mnt} did not mount`);
}

const root = mkdtempSync('/var/tmp/dynamicfs-bench-');

function dirs(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const d = path.join(root, `${prefix}-${i + 1}`);
    mkdirSync(d, { recursive: true });
    return d;
  });
}

function cli(...args: string[]): string {
  return execFileSync(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 28 });
}

function timed<T>(fn: () => T): [T, number] {
  const start = process.hrtime.bigint();
  const v = fn();
  return [v, Number(process.hrtime.bigint() - start) / 1e9];
}

function rawTarget(): Target {
  const d = path.join(root, 'raw');
  return { name: 'raw directory', up: async () => (mkdirSync(d, { recursive: true }), d), cycle: async () => undefined, down: async () => undefined };
}

function mergerfsTarget(): Target {
  const branches = dirs('mergerfs-branch', 4);
  const mnt = path.join(root, 'mergerfs');
  return {
    name: 'mergerfs (4 branches)',
    async up() {
      mkdirSync(mnt, { recursive: true });
      execFileSync('mergerfs', ['-o', 'category.create=mfs,cache.files=off', branches.join(':'), mnt]);
      await waitMounted(mnt);
      return mnt;
    },
    async cycle() {},
    async down() {
      await lazyUnmount(mnt);
    },
  };
}

/** The do-nothing mount: with the kernel's default read-ahead (the ceiling), or with DynamicFS's. */
function nullTarget(readAheadKb: number): Target {
  const mnt = path.join(root, `null-fuse-${readAheadKb}`);
  let child: ChildProcess | null = null;
  return {
    name: readAheadKb ? `fuse-native do-nothing, read-ahead ${readAheadKb} KiB` : 'fuse-native do-nothing (ceiling)',
    async up() {
      mkdirSync(mnt, { recursive: true });
      child = spawn(process.execPath, [NULL_FUSE, mnt, String(readAheadKb)], { stdio: 'ignore' });
      await waitMounted(mnt, child);
      return mnt;
    },
    async cycle() {},
    async down() {
      child?.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      await lazyUnmount(mnt);
    },
  };
}

function dynamicfsTarget(policy: string): Target {
  const pool = path.join(root, `pool-${policy.replace(/[:+]/g, '-')}`);
  const mnt = `${pool}-mnt`;
  // Seven disks: erasure:4+2 needs a spare to rebuild onto after one fails.
  const disks = dirs(`${path.basename(pool)}-disk`, 7);
  cli('init', pool, '--redundancy', policy);
  for (const d of disks) cli('add-disk', pool, d);
  const mount = async () => {
    cli('mount', pool, mnt);
    await waitMounted(mnt);
  };
  return {
    name: `DynamicFS ${policy}`,
    async up() {
      await mount();
      return mnt;
    },
    async cycle() {
      // Remount so the read starts cold, like the others after drop_caches.
      cli('unmount', pool);
      dropCaches();
      await mount();
    },
    async down() {
      cli('unmount', pool);
    },
    heal: policy === 'replication:1' ? undefined : async () => {
      await mount();
      timeDd(['if=/dev/zero', `of=${path.join(mnt, 'heal')}`, 'bs=1M', `count=${SIZE_MIB}`]);
      cli('unmount', pool);
      const fragmentDirs = disks.map((d) => path.join(d, 'dynamicfs', 'fragments'));
      dropCaches();
      const [, rawSecs] = timed(() => execFileSync('bash', ['-c', 'find "$@" -type f -print0 | xargs -0 cat > /dev/null', 'raw', ...fragmentDirs]));
      const rawBytes = Number(execFileSync('du', ['-cb', ...fragmentDirs], { encoding: 'utf8' }).trim().split('\n').pop()?.split('\t')[0]);
      dropCaches();
      const [scrubOut, scrubSecs] = timed(() => cli('scrub', pool, '--json'));
      const scrubBytes = (JSON.parse(scrubOut) as { bytesRead: number }).bytesRead;
      cli('set-disk-health', pool, disks[0], 'failed', '--reason', 'bench');
      dropCaches();
      const [rebuildOut, rebuildSecs] = timed(() => cli('rebuild', pool, '--json'));
      const rebuilt = JSON.parse(rebuildOut) as { bytesWritten: number; bytesRead: number };
      const rebuildBytes = rebuilt.bytesWritten;
      return {
        rawReadMiBs: rawBytes / 2 ** 20 / rawSecs, scrubMiBs: scrubBytes / 2 ** 20 / scrubSecs,
        rebuildMiBs: rebuildBytes / 2 ** 20 / rebuildSecs, rebuildReadMiBs: rebuilt.bytesRead / 2 ** 20 / rebuildSecs, scrubBytes, rebuildBytes,
      };
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface Row { name: string; writeMiBs: number; readMiBs: number; writes: number[]; reads: number[]; heal?: HealFigures }

async function measure(t: Target): Promise<Row> {
  const writes: number[] = [];
  const reads: number[] = [];
  const dir = await t.up();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const file = path.join(dir, 'file');
      dropCaches();
      writes.push(timeDd(['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${SIZE_MIB}`]));
      await t.cycle();
      dropCaches();
      reads.push(timeDd([`if=${file}`, 'of=/dev/null', 'bs=1M', `count=${SIZE_MIB}`]));
      if (!t.name.startsWith('fuse-native')) rmSync(file, { force: true });
    }
  } finally {
    await t.down();
  }
  const heal = t.heal ? await t.heal() : undefined;
  return { name: t.name, writeMiBs: SIZE_MIB / median(writes), readMiBs: SIZE_MIB / median(reads), writes, reads, heal };
}

async function main(): Promise<void> {
  const targets = [
    rawTarget(), mergerfsTarget(), nullTarget(0), nullTarget(DEFAULT_READ_AHEAD_KB),
    dynamicfsTarget('replication:1'), dynamicfsTarget('replication:2'), dynamicfsTarget('erasure:4+2'),
  ];
  const rows: Row[] = [];
  try {
    for (const t of targets) {
      process.stderr.write(`measuring ${t.name} ...\n`);
      rows.push(await measure(t));
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const ceiling = rows.find((r) => r.name === 'fuse-native do-nothing (ceiling)') as Row;
  const sameSettings = rows.find((r) => r.name.startsWith('fuse-native do-nothing, read-ahead')) as Row;
  const merger = rows.find((r) => r.name.startsWith('mergerfs')) as Row;
  const out = rows.map((r) => ({
    target: r.name,
    write_mib_s: Math.round(r.writeMiBs),
    read_mib_s: Math.round(r.readMiBs),
    write_vs_ceiling: +(r.writeMiBs / ceiling.writeMiBs).toFixed(2),
    read_vs_ceiling: +(r.readMiBs / ceiling.readMiBs).toFixed(2),
    read_vs_same_readahead: +(r.readMiBs / sameSettings.readMiBs).toFixed(2),
    write_vs_mergerfs: +(r.writeMiBs / merger.writeMiBs).toFixed(2),
    read_vs_mergerfs: +(r.readMiBs / merger.readMiBs).toFixed(2),
    write_seconds: r.writes.map((x) => +x.toFixed(2)),
    read_seconds: r.reads.map((x) => +x.toFixed(2)),
  }));
  const heal = rows.filter((r) => r.heal).map((r) => {
    const h = r.heal as HealFigures;
    return {
      target: r.name, raw_fragment_read_mib_s: Math.round(h.rawReadMiBs), scrub_mib_s: Math.round(h.scrubMiBs),
      rebuild_written_mib_s: Math.round(h.rebuildMiBs), rebuild_read_mib_s: Math.round(h.rebuildReadMiBs),
      scrub_vs_raw: +(h.scrubMiBs / h.rawReadMiBs).toFixed(2), rebuild_vs_raw: +(h.rebuildReadMiBs / h.rawReadMiBs).toFixed(2),
      scrub_bytes: h.scrubBytes, rebuild_bytes: h.rebuildBytes,
    };
  });
  if (json) {
    process.stdout.write(JSON.stringify({ sizeMiB: SIZE_MIB, rounds: ROUNDS, results: out, heal }, null, 2) + '\n');
    return;
  }
  const header = ['target', 'write MiB/s', 'read MiB/s', 'write/ceiling', 'read/ceiling', 'read/same-RA', 'write/mergerfs', 'read/mergerfs'];
  const lines = [header, ...out.map((o) => [o.target, String(o.write_mib_s), String(o.read_mib_s), o.write_vs_ceiling.toFixed(2), o.read_vs_ceiling.toFixed(2), o.read_vs_same_readahead.toFixed(2), o.write_vs_mergerfs.toFixed(2), o.read_vs_mergerfs.toFixed(2)])];
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  process.stdout.write(`${SIZE_MIB} MiB file, 1 MiB blocks, median of ${ROUNDS} rounds, caches dropped between write and read\n`);
  process.stdout.write(`ceiling: the do-nothing mount with kernel defaults; same-RA: the do-nothing mount with DynamicFS's ${DEFAULT_READ_AHEAD_KB} KiB read-ahead\n`);
  for (const l of lines) process.stdout.write(l.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ') + '\n');
  printTable(
    '\nscrub (every fragment read and verified) and rebuild (one of 7 disks failed) against cat of the fragment files;\nrebuild/raw compares the surviving bytes rebuild read per second with cat\'s read rate',
    ['target', 'raw MiB/s', 'scrub MiB/s', 'rebuild read MiB/s', 'rebuild written MiB/s', 'scrub/raw', 'rebuild/raw'],
    heal.map((h) => [h.target, String(h.raw_fragment_read_mib_s), String(h.scrub_mib_s), String(h.rebuild_read_mib_s), String(h.rebuild_written_mib_s), h.scrub_vs_raw.toFixed(2), h.rebuild_vs_raw.toFixed(2)]),
  );
}

function printTable(title: string, header: string[], body: string[][]): void {
  const lines = [header, ...body];
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  process.stdout.write(title + '\n');
  for (const l of lines) process.stdout.write(l.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ') + '\n');
}

await main();
