import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { cleanup, makePool, MountedPool, patternBytes, rng, tempDir, type TestPool } from '../helpers/env.js';

/**
 * Randomized model test: the same long random sequence of file operations is applied to the mount
 * and to a plain directory; every result (data, sizes, listings, error codes) must match.
 * Reproduce a failure with DFS_MODEL_SEED=<seed printed below>.
 */
const SEED = Number(process.env.DFS_MODEL_SEED ?? Date.now() % 1_000_000);
const OPS = Number(process.env.DFS_MODEL_OPS ?? 3000);

type Outcome = string;

function attempt(fn: () => unknown): Outcome {
  try {
    const v = fn();
    if (Buffer.isBuffer(v)) return `ok:${v.length}:${v.toString('base64')}`;
    return `ok:${JSON.stringify(v ?? null)}`;
  } catch (err) {
    return `err:${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  }
}

function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const abs = path.join(root, rel);
    const st = fs.lstatSync(abs);
    if (st.isSymbolicLink()) out.push(`L ${rel} -> ${fs.readlinkSync(abs)}`);
    else if (st.isDirectory()) {
      const names = fs.readdirSync(abs).sort();
      out.push(`D ${rel} [${names.join(',')}]`);
      for (const n of names) walk(path.join(rel, n));
    } else
      out.push(
        `F ${rel} ${st.size} nlink=${st.nlink} ${fs.readFileSync(abs).toString('base64').slice(0, 64)}#${hash(fs.readFileSync(abs))}`,
      );
  };
  walk('.');
  return out;
}

function hash(b: Buffer): number {
  let h = 2166136261;
  for (let i = 0; i < b.length; i += 7) h = Math.imul(h ^ b[i], 16777619) >>> 0;
  return h;
}

let p: TestPool;
let m: MountedPool;
let plain: string;
before(async () => {
  p = await makePool({ redundancy: 'erasure:2+1', disks: 3, extentSize: 64 * 1024 });
  m = await MountedPool.start(p.pool, p.mnt);
  plain = tempDir('dfs-model-plain-');
});
after(async () => {
  await m?.stop();
  cleanup(p.root);
  cleanup(plain);
});

test(`random operation sequences match a plain directory (seed ${SEED}, ${OPS} ops)`, () => {
  const random = rng(SEED);
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
  const int = (n: number) => Math.floor(random() * n);
  const dirs = ['', 'a', 'b', 'a/c'];
  const files = ['f0', 'f1', 'f2', 'f3', 'f4'];
  const subdirs = ['a', 'b', 'c'];
  const names = [...files, ...subdirs];
  // Mostly file names, sometimes a directory name, so type clashes (EISDIR, ENOTDIR...) happen too.
  const anyPath = () => path.join(pick(dirs), random() < 0.85 ? pick(files) : pick(subdirs));
  const dirPath = () => path.join(pick(['', '', 'a', 'b']), pick(subdirs));
  const { O_WRONLY, O_CREAT } = fs.constants;

  const ops: [number, (root: string) => Outcome, () => string][] = [];
  const kinds: { weight: number; make: () => [(root: string) => Outcome, string] }[] = [
    {
      weight: 6,
      make: () => {
        const f = anyPath();
        const off = int(300_000);
        const len = 1 + int(100_000);
        const seed = int(1e6);
        return [
          (r) =>
            attempt(() => {
              const fd = fs.openSync(path.join(r, f), O_WRONLY | O_CREAT, 0o644);
              try {
                return fs.writeSync(fd, patternBytes(seed, len), 0, len, off);
              } finally {
                fs.closeSync(fd);
              }
            }),
          `write ${f} @${off} +${len}`,
        ];
      },
    },
    {
      weight: 3,
      make: () => {
        const f = anyPath();
        const len = 1 + int(50_000);
        const seed = int(1e6);
        return [(r) => attempt(() => fs.appendFileSync(path.join(r, f), patternBytes(seed, len))), `append ${f} +${len}`];
      },
    },
    {
      weight: 3,
      make: () => {
        const f = anyPath();
        const len = int(350_000);
        return [(r) => attempt(() => fs.truncateSync(path.join(r, f), len)), `truncate ${f} ${len}`];
      },
    },
    {
      weight: 5,
      make: () => {
        const f = anyPath();
        const off = int(300_000);
        const len = 1 + int(150_000);
        return [
          (r) =>
            attempt(() => {
              const fd = fs.openSync(path.join(r, f), 'r');
              try {
                const b = Buffer.alloc(len);
                const n = fs.readSync(fd, b, 0, len, off);
                return b.subarray(0, n);
              } finally {
                fs.closeSync(fd);
              }
            }),
          `read ${f} @${off} +${len}`,
        ];
      },
    },
    {
      weight: 3,
      make: () => {
        const d = dirPath();
        return [(r) => attempt(() => fs.mkdirSync(path.join(r, d))), `mkdir ${d}`];
      },
    },
    {
      weight: 1,
      make: () => {
        const d = random() < 0.8 ? dirPath() : anyPath();
        return [(r) => attempt(() => fs.rmdirSync(path.join(r, d))), `rmdir ${d}`];
      },
    },
    {
      weight: 2,
      make: () => {
        const f = anyPath();
        return [(r) => attempt(() => fs.unlinkSync(path.join(r, f))), `unlink ${f}`];
      },
    },
    {
      weight: 3,
      make: () => {
        const a = anyPath();
        const b = anyPath();
        return [(r) => attempt(() => fs.renameSync(path.join(r, a), path.join(r, b))), `rename ${a} ${b}`];
      },
    },
    {
      weight: 1,
      make: () => {
        const a = anyPath();
        const b = anyPath();
        return [(r) => attempt(() => fs.linkSync(path.join(r, a), path.join(r, b))), `link ${a} ${b}`];
      },
    },
    {
      weight: 1,
      make: () => {
        const a = pick(names);
        const b = anyPath();
        return [(r) => attempt(() => fs.symlinkSync(a, path.join(r, b))), `symlink ${a} ${b}`];
      },
    },
    {
      weight: 3,
      make: () => {
        const f = anyPath();
        return [
          (r) =>
            attempt(() => {
              const s = fs.lstatSync(path.join(r, f));
              return [s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'link' : 'file', s.isDirectory() ? 0 : s.size, s.nlink];
            }),
          `stat ${f}`,
        ];
      },
    },
    {
      weight: 2,
      make: () => {
        const d = pick(dirs);
        return [(r) => attempt(() => fs.readdirSync(path.join(r, d)).sort()), `readdir ${d}`];
      },
    },
  ];
  const total = kinds.reduce((s, k) => s + k.weight, 0);
  for (let i = 0; i < OPS; i++) {
    let x = random() * total;
    const kind = kinds.find((k) => (x -= k.weight) < 0) ?? kinds[0];
    const [run, desc] = kind.make();
    ops.push([i, run, () => desc]);
  }
  let succeeded = 0;
  for (const [i, run, desc] of ops) {
    const expected = run(plain);
    if (expected.startsWith('ok')) succeeded++;
    const actual = run(p.mnt);
    assert.equal(actual.slice(0, 400), expected.slice(0, 400), `op ${i} (${desc()}) differs; seed ${SEED}`);
    assert.equal(actual, expected, `op ${i} (${desc()}) differs; seed ${SEED}`);
  }
  const tree = snapshot(plain);
  assert.deepEqual(snapshot(p.mnt), tree, `final trees differ; seed ${SEED}`);
  // The sequence must have done real work, not failed its way through.
  assert.ok(succeeded > OPS * 0.3, `only ${succeeded} of ${OPS} operations succeeded`);
  assert.ok(tree.filter((l) => l.startsWith('F ')).length >= 3, 'the final tree holds too few files');
  process.stdout.write(`# model: seed ${SEED}, ${OPS} ops, ${succeeded} succeeded, ${tree.length} entries at the end\n`);
});
