/**
 * `npm run bench`: DynamicFS side by side with its references, in one run, on the same kind of
 * directories. Writes and reads a file in 1 MiB blocks with dd, caches dropped in between, and
 * prints MiB/s and ratios. Absolute numbers on shared machines are noise; the ratios are the figure.
 *
 * Every target is mounted for the whole run and the rounds interleave them (round 1 of every
 * target, then round 2, ...), so a disk or neighbour that slows down for a minute slows all of them
 * alike; each ratio is the median of the per-round ratios.
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
const KERNEL_NULL = path.resolve(here, 'kernel-null.js');
const SIZE_MIB = Number(process.env.BENCH_SIZE_MIB ?? 1024);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const json = process.argv.includes('--json');

type Role = 'raw' | 'mergerfs' | 'ceiling' | 'minimal' | 'same-ra' | 'kernel' | 'dynamicfs';

interface HealFigures {
  rawReadMiBs: number;
  scrubMiBs: number;
  rebuildMiBs: number;
  rebuildReadMiBs: number;
  scrubBytes: number;
  rebuildBytes: number;
  /** Each against the cat run right before it. */
  scrubVsRaw: number;
  rebuildVsRaw: number;
  /** Scrub and rebuild in whole CLI runs (process start, pool open and close included). */
  scrubWallMiBs: number;
  rebuildReadWallMiBs: number;
}

interface Target {
  name: string;
  role: Role;
  /** Makes the target ready and returns the directory to write into. */
  up(): Promise<string>;
  down(): Promise<void>;
  /** Scrub and rebuild throughput against reading the same fragment files straight from the disks. */
  heal?(): Promise<HealFigures>;
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

/** Seconds between a report's startedAt and finishedAt: the operation itself, without the CLI around it. */
function reportSeconds(r: { startedAt: string; finishedAt: string }): number {
  return Math.max(1e-3, (Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000);
}

function rawTarget(): Target {
  const d = path.join(root, 'raw');
  return { name: 'raw directory', role: 'raw', up: async () => (mkdirSync(d, { recursive: true }), d), down: async () => undefined };
}

function mergerfsTarget(): Target {
  const branches = dirs('mergerfs-branch', 4);
  const mnt = path.join(root, 'mergerfs');
  return {
    name: 'mergerfs (4 branches)',
    role: 'mergerfs',
    async up() {
      mkdirSync(mnt, { recursive: true });
      execFileSync('mergerfs', ['-o', 'category.create=mfs,cache.files=off', branches.join(':'), mnt]);
      await waitMounted(mnt);
      return mnt;
    },
    async down() {
      await lazyUnmount(mnt);
    },
  };
}

/**
 * The do-nothing mount. `ceiling`: every operation DynamicFS implements, kernel read-ahead;
 * `minimal`: only what dd needs (no xattr handlers, so the kernel stops asking getxattr before each
 * write); `same-ra`: the ceiling with DynamicFS's read-ahead.
 */
function nullTarget(role: 'ceiling' | 'minimal' | 'same-ra'): Target {
  const readAheadKb = role === 'same-ra' ? DEFAULT_READ_AHEAD_KB : 0;
  const mnt = path.join(root, `null-fuse-${role}`);
  const names = {
    ceiling: 'fuse-native do-nothing (ceiling)',
    minimal: 'fuse-native do-nothing, no xattr handlers',
    'same-ra': `fuse-native do-nothing, read-ahead ${DEFAULT_READ_AHEAD_KB} KiB`,
  };
  return serverTarget(names[role], role, mnt, [NULL_FUSE, mnt, String(readAheadKb), role === 'minimal' ? 'minimal' : 'full']);
}

/** A target served by a node process of its own (`args`), stopped with SIGTERM. */
function serverTarget(name: string, role: Role, mnt: string, args: string[]): Target {
  let child: ChildProcess | null = null;
  return {
    name,
    role,
    async up() {
      mkdirSync(mnt, { recursive: true });
      child = spawn(process.execPath, args, { stdio: 'ignore' });
      await waitMounted(mnt, child);
      return mnt;
    },
    async down() {
      child?.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      await lazyUnmount(mnt);
    },
  };
}

/**
 * The do-nothing server of kernel-null.ts: the same answers as the ceiling with no binding and no
 * libfuse, 1 MiB requests and DynamicFS's read-ahead. What a filesystem could reach here without
 * fuse-native's per-request hand-offs and libfuse 2's 128 KiB cap.
 */
function kernelTarget(): Target {
  const mnt = path.join(root, 'kernel-null');
  return serverTarget('do-nothing on /dev/fuse, no binding', 'kernel', mnt, [KERNEL_NULL, mnt, String(DEFAULT_READ_AHEAD_KB)]);
}

function dynamicfsTarget(policy: string): Target {
  const pool = path.join(root, `pool-${policy.replace(/[:+]/g, '-')}`);
  const mnt = `${pool}-mnt`;
  // Seven disks: erasure:4+2 needs a spare to rebuild onto after one fails.
  const disks = dirs(`${path.basename(pool)}-disk`, 7);
  cli('init', pool, '--redundancy', policy);
  // Directories of the bench's filesystem stand in for devices: each names its own failure domain.
  disks.forEach((d, i) => cli('add-disk', pool, d, '--failure-domain', `bench-disk${i + 1}`));
  const mount = async () => {
    cli('mount', pool, mnt);
    await waitMounted(mnt);
  };
  const fragmentDirs = disks.map((d) => path.join(d, 'dynamicfs', 'fragments'));
  /** cat of every fragment file, caches dropped first: the disks' own read rate for these files. */
  const catFragments = (): number => {
    dropCaches();
    const [, secs] = timed(() =>
      execFileSync('bash', ['-c', 'find "$@" -type f -print0 | xargs -0 cat > /dev/null', 'raw', ...fragmentDirs]),
    );
    const bytes = Number(
      execFileSync('du', ['-cb', ...fragmentDirs], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .pop()
        ?.split('\t')[0],
    );
    return bytes / 2 ** 20 / secs;
  };
  return {
    name: `DynamicFS ${policy}`,
    role: 'dynamicfs',
    // The daemon stays up between write and read, like the other targets: its extent cache holds
    // no byte of the file after the write (written extents go to the disks, not to the read cache,
    // and each round writes new extents), so with the page cache dropped the read starts cold.
    async up() {
      await mount();
      return mnt;
    },
    async down() {
      cli('unmount', pool);
    },
    heal:
      policy === 'replication:1'
        ? undefined
        : async () => {
            await mount();
            timeDd(['if=/dev/zero', `of=${path.join(mnt, 'heal')}`, 'bs=1M', `count=${SIZE_MIB}`]);
            cli('unmount', pool);
            // Each operation is compared with a cat run right before it, so both see the disks in the same mood.
            const rawBeforeScrub = catFragments();
            dropCaches();
            const [scrubOut, scrubWall] = timed(() => cli('scrub', pool, '--json'));
            const scrub = JSON.parse(scrubOut) as { bytesRead: number; startedAt: string; finishedAt: string };
            cli('set-disk-health', pool, disks[0], 'failed', '--reason', 'bench');
            const rawBeforeRebuild = catFragments();
            dropCaches();
            const [rebuildOut, rebuildWall] = timed(() => cli('rebuild', pool, '--json'));
            const rebuilt = JSON.parse(rebuildOut) as { bytesWritten: number; bytesRead: number; startedAt: string; finishedAt: string };
            const scrubSecs = reportSeconds(scrub);
            const rebuildSecs = reportSeconds(rebuilt);
            const scrubMiBs = scrub.bytesRead / 2 ** 20 / scrubSecs;
            const rebuildReadMiBs = rebuilt.bytesRead / 2 ** 20 / rebuildSecs;
            return {
              rawReadMiBs: (rawBeforeScrub + rawBeforeRebuild) / 2,
              scrubMiBs,
              rebuildMiBs: rebuilt.bytesWritten / 2 ** 20 / rebuildSecs,
              rebuildReadMiBs,
              scrubBytes: scrub.bytesRead,
              rebuildBytes: rebuilt.bytesWritten,
              scrubVsRaw: scrubMiBs / rawBeforeScrub,
              rebuildVsRaw: rebuildReadMiBs / rawBeforeRebuild,
              scrubWallMiBs: scrub.bytesRead / 2 ** 20 / scrubWall,
              rebuildReadWallMiBs: rebuilt.bytesRead / 2 ** 20 / rebuildWall,
            };
          },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface Row {
  target: Target;
  dir: string;
  writes: number[];
  reads: number[];
  heal?: HealFigures;
}

/** One write and one read of the file on one target; the file is removed after (except on the do-nothing mounts). */
function round(row: Row): void {
  const file = path.join(row.dir, 'file');
  dropCaches();
  row.writes.push(timeDd(['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${SIZE_MIB}`]));
  dropCaches();
  row.reads.push(timeDd([`if=${file}`, 'of=/dev/null', 'bs=1M', `count=${SIZE_MIB}`]));
  if (!['ceiling', 'minimal', 'same-ra', 'kernel'].includes(row.target.role)) rmSync(file, { force: true });
}

/** Median over rounds of (reference seconds / target seconds): a ratio of speeds, paired by round. */
function pairedRatio(target: number[], reference: number[]): number {
  return median(target.map((t, i) => reference[i] / t));
}

async function main(): Promise<void> {
  const targets = [
    rawTarget(),
    mergerfsTarget(),
    nullTarget('ceiling'),
    nullTarget('minimal'),
    nullTarget('same-ra'),
    kernelTarget(),
    dynamicfsTarget('replication:1'),
    dynamicfsTarget('replication:2'),
    dynamicfsTarget('erasure:4+2'),
  ];
  const rows: Row[] = [];
  try {
    try {
      for (const t of targets) rows.push({ target: t, dir: await t.up(), writes: [], reads: [] });
      for (let r = 0; r < ROUNDS; r++) {
        process.stderr.write(`round ${r + 1} of ${ROUNDS} ...\n`);
        for (const row of rows) round(row);
      }
    } finally {
      for (const row of rows) await row.target.down();
    }
    for (const row of rows) {
      if (!row.target.heal) continue;
      process.stderr.write(`scrub and rebuild: ${row.target.name} ...\n`);
      row.heal = await row.target.heal();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const byRole = (role: Role) => rows.find((r) => r.target.role === role) as Row;
  const ceiling = byRole('ceiling');
  const minimal = byRole('minimal');
  const sameRa = byRole('same-ra');
  const merger = byRole('mergerfs');
  const raw = byRole('raw');
  const out = rows.map((r) => ({
    target: r.target.name,
    write_mib_s: Math.round(SIZE_MIB / median(r.writes)),
    read_mib_s: Math.round(SIZE_MIB / median(r.reads)),
    write_vs_ceiling: +pairedRatio(r.writes, ceiling.writes).toFixed(2),
    read_vs_ceiling: +pairedRatio(r.reads, ceiling.reads).toFixed(2),
    write_vs_no_xattr_ceiling: +pairedRatio(r.writes, minimal.writes).toFixed(2),
    read_vs_no_xattr_ceiling: +pairedRatio(r.reads, minimal.reads).toFixed(2),
    read_vs_same_readahead: +pairedRatio(r.reads, sameRa.reads).toFixed(2),
    read_vs_raw_directory: +pairedRatio(r.reads, raw.reads).toFixed(2),
    write_vs_mergerfs: +pairedRatio(r.writes, merger.writes).toFixed(2),
    read_vs_mergerfs: +pairedRatio(r.reads, merger.reads).toFixed(2),
    write_seconds: r.writes.map((x) => +x.toFixed(2)),
    read_seconds: r.reads.map((x) => +x.toFixed(2)),
  }));
  const heal = rows
    .filter((r) => r.heal)
    .map((r) => {
      const h = r.heal as HealFigures;
      return {
        target: r.target.name,
        raw_fragment_read_mib_s: Math.round(h.rawReadMiBs),
        scrub_mib_s: Math.round(h.scrubMiBs),
        rebuild_written_mib_s: Math.round(h.rebuildMiBs),
        rebuild_read_mib_s: Math.round(h.rebuildReadMiBs),
        scrub_vs_raw: +h.scrubVsRaw.toFixed(2),
        rebuild_vs_raw: +h.rebuildVsRaw.toFixed(2),
        scrub_cli_mib_s: Math.round(h.scrubWallMiBs),
        rebuild_read_cli_mib_s: Math.round(h.rebuildReadWallMiBs),
        scrub_bytes: h.scrubBytes,
        rebuild_bytes: h.rebuildBytes,
      };
    });
  if (json) {
    process.stdout.write(JSON.stringify({ sizeMiB: SIZE_MIB, rounds: ROUNDS, results: out, heal }, null, 2) + '\n');
    return;
  }
  printTable(
    `${SIZE_MIB} MiB file, 1 MiB blocks, ${ROUNDS} interleaved rounds, caches dropped before every write and read; MiB/s: median; ratios: median of per-round ratios\n` +
      "ceiling: the do-nothing mount answering every operation DynamicFS implements; no-xattr: without xattr handlers (no getxattr before each write); same-RA: the ceiling with DynamicFS's read-ahead;\n" +
      "/dev/fuse, no binding: the same answers from a server speaking the kernel protocol itself (1 MiB requests, DynamicFS's read-ahead)",
    [
      'target',
      'write MiB/s',
      'read MiB/s',
      'write/ceiling',
      'read/ceiling',
      'write/no-xattr',
      'read/no-xattr',
      'read/same-RA',
      'read/raw-dir',
      'write/mergerfs',
      'read/mergerfs',
    ],
    out.map((o) => [
      o.target,
      String(o.write_mib_s),
      String(o.read_mib_s),
      o.write_vs_ceiling.toFixed(2),
      o.read_vs_ceiling.toFixed(2),
      o.write_vs_no_xattr_ceiling.toFixed(2),
      o.read_vs_no_xattr_ceiling.toFixed(2),
      o.read_vs_same_readahead.toFixed(2),
      o.read_vs_raw_directory.toFixed(2),
      o.write_vs_mergerfs.toFixed(2),
      o.read_vs_mergerfs.toFixed(2),
    ]),
  );
  printTable(
    '\nscrub (every fragment read and verified) and rebuild (one of 7 disks failed) against cat of the fragment files run right before each;\n' +
      'rates over the operation as the engine timed it (its report\'s start and end); "CLI" columns include starting the process and opening and closing the pool',
    [
      'target',
      'raw MiB/s',
      'scrub MiB/s',
      'rebuild read MiB/s',
      'rebuild written MiB/s',
      'scrub/raw',
      'rebuild/raw',
      'scrub CLI MiB/s',
      'rebuild read CLI MiB/s',
    ],
    heal.map((h) => [
      h.target,
      String(h.raw_fragment_read_mib_s),
      String(h.scrub_mib_s),
      String(h.rebuild_read_mib_s),
      String(h.rebuild_written_mib_s),
      h.scrub_vs_raw.toFixed(2),
      h.rebuild_vs_raw.toFixed(2),
      String(h.scrub_cli_mib_s),
      String(h.rebuild_read_cli_mib_s),
    ]),
  );
}

function printTable(title: string, header: string[], body: string[][]): void {
  const lines = [header, ...body];
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  process.stdout.write(title + '\n');
  for (const l of lines) process.stdout.write(l.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ') + '\n');
}

await main();
