import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { DiskReport } from '../../engine/report/status.js';
import type { DrainReport } from '../../engine/heal/drain.js';
import { cleanup, cli, cliJson, makePool, MountedPool, patternBytes, writeSamples } from '../helpers/env.js';

const FILES = Array.from({ length: 6 }, (_, i) => ({ name: `f${i}`, seed: 900 + i, size: 40_000 + i * 77_777 }));

function fragmentFileCount(disk: string): number {
  const root = path.join(disk, 'dynamicfs', 'fragments');
  if (!fs.existsSync(root)) return 0;
  return fs.readdirSync(root).reduce((n, sub) => n + fs.readdirSync(path.join(root, sub)).length, 0);
}

test('remove-disk drains a disk while mounted: every fragment moves, the disk leaves, nothing is lost', async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 4, extentSize: 64 * 1024 });
  let m: MountedPool | undefined;
  try {
    await writeSamples(p, FILES);
    assert.ok(fragmentFileCount(p.disks[0]) > 0);
    m = await MountedPool.start(p.pool, p.mnt);
    const r = cliJson<DrainReport>('remove-disk', p.pool, p.disks[0]);
    assert.equal(r.removed, true, JSON.stringify(r.failures));
    assert.equal(r.moved, r.fragments);
    assert.equal(fragmentFileCount(p.disks[0]), 0);
    assert.equal(fs.existsSync(path.join(p.disks[0], '.dynamicfs-disk.json')), false);
    assert.equal(cliJson<{ disks: DiskReport[] }>('list-disks', p.pool).disks.length, 3);
    for (const f of FILES) assert.ok(fs.readFileSync(path.join(p.mnt, f.name)).equals(patternBytes(f.seed, f.size)));
    assert.equal(await m.stop(), 0);
    assert.equal(cli('fsck', p.pool).code, 0);
  } finally {
    await m?.stop();
    cleanup(p.root);
  }
});

test('remove-disk refuses, changing nothing, when the other disks cannot satisfy the policy', async () => {
  const p = await makePool({ redundancy: 'erasure:2+1', disks: 3, extentSize: 64 * 1024 });
  try {
    await writeSamples(p, FILES);
    const r = cli('remove-disk', p.pool, p.disks[2]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /erasure:2\+1 needs 3 distinct disks; only 2 healthy disk\(s\) would remain\. Nothing was changed\./);
    const disks = cliJson<{ disks: DiskReport[] }>('list-disks', p.pool).disks;
    assert.deepEqual(
      disks.map((d) => d.health),
      ['healthy', 'healthy', 'healthy'],
    );
  } finally {
    cleanup(p.root);
  }
});

test('replace-disk swaps a disk for a new one with the same tier and cap', async () => {
  const p = await makePool({ redundancy: 'erasure:2+1', disks: 3, extentSize: 64 * 1024 });
  let m: MountedPool | undefined;
  try {
    await writeSamples(p, FILES);
    const fresh = path.join(p.root, 'new-disk');
    fs.mkdirSync(fresh);
    const r = cliJson<{ added: { path: string }; removed: DrainReport }>('replace-disk', p.pool, p.disks[1], fresh);
    assert.equal(r.removed.removed, true);
    assert.equal(r.added.path, fresh);
    assert.ok(fragmentFileCount(fresh) > 0);
    m = await MountedPool.start(p.pool, p.mnt);
    for (const f of FILES) assert.ok(fs.readFileSync(path.join(p.mnt, f.name)).equals(patternBytes(f.seed, f.size)));
  } finally {
    await m?.stop();
    cleanup(p.root);
  }
});
