import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fstatSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMounted, lazyUnmount } from '../../engine/fuse/mount.js';
import { Pool } from '../../engine/pool/pool.js';
import { parsePolicy } from '../../engine/redundancy/policy.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CLI = path.resolve(here, '../../engine/cli/main.js');

export function tempDir(prefix = 'dfs-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface TestPool {
  root: string;
  pool: string;
  disks: string[];
  mnt: string;
}

/** A pool of `disks` directory disks in a fresh temporary folder, created through the engine API. */
export async function makePool(
  options: { disks?: number; redundancy?: string; extentSize?: number; capacities?: (number | null)[]; autoRebuild?: boolean } = {},
): Promise<TestPool> {
  const root = tempDir();
  const poolDir = path.join(root, 'pool');
  await Pool.create(
    poolDir,
    {
      extentSize: options.extentSize ?? 64 * 1024,
      defaultPolicy: parsePolicy(options.redundancy ?? 'replication:2'),
      checksum: 'xxh64',
    },
    {
      // Off unless a test asks: most tests look at a degraded pool before they rebuild it themselves.
      reliability: { auto_rebuild: options.autoRebuild ?? false, auto_scrub: false },
    },
  );
  const pool = await Pool.open(poolDir);
  const disks: string[] = [];
  try {
    for (let i = 0; i < (options.disks ?? 4); i++) {
      const d = path.join(root, `disk${i + 1}`);
      mkdirSync(d);
      // Directories of one filesystem stand in for separate devices: each names its own failure domain.
      await pool.addDisk(d, 'warm', options.capacities?.[i] ?? null, { failureDomain: `test-disk${i + 1}` });
      disks.push(d);
    }
  } finally {
    await pool.close();
  }
  const mnt = path.join(root, 'mnt');
  mkdirSync(mnt);
  return { root, pool: poolDir, disks, mnt };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function cli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function cliJson<T>(...args: string[]): T {
  const r = cli(...args, '--json');
  if (r.code !== 0 && !r.stdout.trim().startsWith('{')) throw new Error(`dynamicfs ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** A mount served by a child process (a test process must never serve the mount it touches). */
export class MountedPool {
  private constructor(
    readonly child: ChildProcess,
    readonly mnt: string,
    readonly log: () => string,
  ) {}

  static async start(pool: string, mnt: string, extraArgs: string[] = []): Promise<MountedPool> {
    // The daemon's output goes to a file, not a pipe: a test blocked in a system call on the mount drains
    // no pipe, and a daemon whose log write waits for room in one cannot answer that call. (The file is
    // unlinked at once; the two descriptors keep it.)
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dfs-daemon-log-'));
    const out = openSync(path.join(dir, 'log'), 'a+');
    rmSync(dir, { recursive: true });
    const log = (): string => {
      const buf = Buffer.alloc(fstatSync(out).size);
      return buf.subarray(0, readSync(out, buf, 0, buf.length, 0)).toString();
    };
    const child = spawn(process.execPath, [CLI, 'mount', pool, mnt, '--foreground', ...extraArgs], { stdio: ['ignore', out, out] });
    const m = new MountedPool(child, mnt, log);
    for (let i = 0; i < 300; i++) {
      if (await isMounted(mnt)) return m;
      if (child.exitCode !== null) throw new Error(`mount daemon exited with ${child.exitCode}: ${log()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await m.kill();
    throw new Error(`mount of ${mnt} timed out: ${log()}`);
  }

  /** Clean stop: SIGTERM, then wait for the daemon to flush and exit. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) {
      await lazyUnmount(this.mnt);
      return this.child.exitCode;
    }
    const exited = new Promise<number | null>((r) =>
      this.child.once('exit', (code, signal) => {
        // A daemon that dies of a signal while stopping is a failure worth seeing in full.
        if (signal)
          process.stderr.write(`mount daemon of ${this.mnt} died of ${signal} while stopping; its log:\n${this.log().slice(-4000)}\n`);
        r(code);
      }),
    );
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<null>((r) => (timer = setTimeout(() => r(null), 30_000)))]);
    clearTimeout(timer);
    if (await isMounted(this.mnt)) await lazyUnmount(this.mnt);
    return code;
  }

  /**
   * Crash: SIGKILL, then detach the dead mount. With `detach: false` the dead mount stays (every
   * call on it fails with ENOTCONN) until `detach()`, so writers still running cannot fall through
   * to the directory underneath.
   */
  async kill(options: { detach?: boolean } = {}): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
      this.child.kill('SIGKILL');
      await exited;
    }
    if (options.detach !== false) await this.detach();
  }

  async detach(): Promise<void> {
    await lazyUnmount(this.mnt);
  }
}

export function cleanup(root: string): void {
  rmSync(root, { recursive: true, force: true });
}

/** Deterministic bytes for a (seed, length) pair, so a file's expected content needs no storage. */
import { patternBytes } from '../../engine/util/pattern.js';
export { patternBytes };

/** Small seeded PRNG for reproducible random tests (the seed is printed on failure). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

export interface SampleFile {
  name: string;
  seed: number;
  size: number;
}

/** Mounts the pool, writes the sample files, and unmounts cleanly (so later reads start cold). */
export async function writeSamples(p: TestPool, files: SampleFile[]): Promise<void> {
  const m = await MountedPool.start(p.pool, p.mnt);
  try {
    for (const f of files) writeFileSync(path.join(p.mnt, f.name), patternBytes(f.seed, f.size));
  } catch (err) {
    await m.stop();
    throw err;
  }
  const code = await m.stop();
  if (code !== 0) throw new Error(`mount daemon exited with ${code}: ${m.log()}`);
}

/** A TCP port nothing listens on right now (for a daemon's --metrics-listen). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** GET over HTTP: status, content type and body. */
export async function httpGet(url: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** One sample of a Prometheus text exposition, or undefined when the series is absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** Polls until `check` returns a value that is not undefined, or fails after `ms`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
