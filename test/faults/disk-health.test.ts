import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { DiskReport, PoolStatus } from '../../engine/report/status.js';
import type { RebuildReport } from '../../engine/heal/rebuild.js';
import type { ScrubReport } from '../../engine/heal/scrub.js';
import { Pool } from '../../engine/pool/pool.js';
import { cleanup, cli, cliJson, makePool, MountedPool, patternBytes, writeSamples } from '../helpers/env.js';
import { loopDisksUnavailable, makeLoopDisk, type LoopDisk } from '../helpers/loop-disk.js';
import { skipBecause } from '../helpers/skip.js';

const FILES = Array.from({ length: 10 }, (_, i) => ({ name: `f${i}`, seed: 1300 + i, size: 90_000 + i * 33_333 }));
const disksOf = (pool: string) => cliJson<{ disks: DiskReport[] }>('list-disks', pool).disks;
const readsBack = (mnt: string, files = FILES) =>
  files.every((f) => fs.readFileSync(path.join(mnt, f.name)).equals(patternBytes(f.seed, f.size)));

test('a disk that turns read-only goes suspect; writes go to the other disks; reads are served', async (t) => {
  const why = loopDisksUnavailable();
  if (why) return skipBecause(t, why);
  // Caps close to the loop disk's size, so placement (weighted by free space) uses it as often as the others.
  const p = await makePool({ redundancy: 'replication:2', disks: 2, extentSize: 64 * 1024, capacities: [56 << 20, 56 << 20] });
  let disk: LoopDisk | undefined;
  let m: MountedPool | undefined;
  try {
    disk = makeLoopDisk(p.root, 'loopdisk', 64);
    const loopMnt = disk.path;
    const pool = await Pool.open(p.pool);
    await pool.addDisk(loopMnt, 'warm', null, { failureDomain: 'loop' });
    fs.mkdirSync(path.join(p.root, 'disk4'));
    await pool.addDisk(path.join(p.root, 'disk4'), 'warm', 56 << 20, { failureDomain: 'disk4' });
    await pool.close();
    await writeSamples(p, FILES.slice(0, 5));
    m = await MountedPool.start(p.pool, p.mnt);
    execFileSync('mount', ['-o', 'remount,ro', loopMnt]);
    try {
      for (const f of FILES.slice(5)) fs.writeFileSync(path.join(p.mnt, f.name), patternBytes(f.seed, f.size));
    } catch (err) {
      throw new Error(`${(err as Error).message}; daemon log: ${m.log()}`);
    }
    const ro = disksOf(p.pool).find((d) => d.path === loopMnt);
    assert.equal(ro?.health, 'suspect');
    assert.match(ro?.healthReason ?? '', /read-only/);
    assert.ok(readsBack(p.mnt));
    const probe = cliJson<{ probes: { path: string; ok: boolean; problems: string[] }[] }>('probe-disks', p.pool).probes.find(
      (x) => x.path === loopMnt,
    );
    assert.equal(probe?.ok, false);
    assert.match(probe?.problems.join(' ') ?? '', /read-only/);
    assert.equal(await m.stop(), 0);
  } finally {
    await m?.stop();
    disk?.release();
    cleanup(p.root);
  }
});

test('a disk whose directories turn unreadable goes suspect; every byte is served from the rest', async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 4, extentSize: 64 * 1024 });
  let m: MountedPool | undefined;
  try {
    await writeSamples(p, FILES);
    const frags = path.join(p.disks[0], 'dynamicfs', 'fragments');
    for (const sub of fs.readdirSync(frags)) {
      fs.rmSync(path.join(frags, sub), { recursive: true });
      fs.writeFileSync(path.join(frags, sub), 'not a directory');
    }
    m = await MountedPool.start(p.pool, p.mnt);
    assert.ok(readsBack(p.mnt));
    const d = disksOf(p.pool)[0];
    assert.ok(['suspect', 'failed'].includes(d.health), `disk is ${d.health}`);
    assert.match(d.healthReason, /I\/O errors \(\d+ read/);
    assert.ok(d.errors.read >= 3);
  } finally {
    await m?.stop();
    cleanup(p.root);
  }
});

test('a failed disk is trusted again only after a passing probe, and its fragments are verified', async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 3, extentSize: 64 * 1024 });
  try {
    await writeSamples(p, FILES.slice(0, 4));
    assert.equal(cli('set-disk-health', p.pool, p.disks[1], 'failed', '--reason', 'pulled').code, 0);
    const refused = cli('set-disk-health', p.pool, p.disks[1], 'healthy');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /run 'dynamicfs probe-disks' and get a passing probe/);
    assert.equal(cli('probe-disks', p.pool).code, 0);
    const back = cliJson<{ to: string; verification: { verified: number; bad: number } }>('set-disk-health', p.pool, p.disks[1], 'healthy');
    assert.equal(back.to, 'healthy');
    assert.ok(back.verification.verified > 0);
    assert.equal(back.verification.bad, 0);
    const transitions = disksOf(p.pool)[1].recentTransitions.map((x) => x.to);
    assert.deepEqual(transitions.slice(0, 3), ['healthy', 'suspect', 'failed']);
  } finally {
    cleanup(p.root);
  }
});

for (const { redundancy, disks } of [
  { redundancy: 'replication:2', disks: 4 },
  { redundancy: 'erasure:4+2', disks: 8 },
]) {
  test(`${redundancy}: a disk dies during a write workload; the workload finishes, nothing is lost, rebuild restores redundancy`, async () => {
    const p = await makePool({ redundancy, disks, extentSize: 64 * 1024 });
    let m: MountedPool | undefined;
    try {
      m = await MountedPool.start(p.pool, p.mnt);
      FILES.forEach((f, i) => {
        if (i === 3) fs.rmSync(path.join(p.disks[2], 'dynamicfs'), { recursive: true, force: true }); // the disk dies
        fs.writeFileSync(path.join(p.mnt, f.name), patternBytes(f.seed, f.size));
      });
      assert.ok(readsBack(p.mnt));
      const dead = disksOf(p.pool)[2];
      assert.notEqual(dead.health, 'healthy');
      if (dead.health !== 'failed') assert.equal(cli('set-disk-health', p.pool, p.disks[2], 'failed', '--reason', 'dead').code, 0);
      const r = cliJson<RebuildReport>('rebuild', p.pool);
      assert.equal(r.extents.failed, 0, JSON.stringify(r.failures));
      const status = cliJson<PoolStatus>('status', p.pool);
      assert.equal(status.extents.healthy, status.extents.total);
      assert.equal(cliJson<ScrubReport>('scrub', p.pool).issues.length, 0);
      assert.ok(readsBack(p.mnt));
    } finally {
      await m?.stop();
      cleanup(p.root);
    }
  });
}

test('a disk that fills up: writes go to the other disks or fail with ENOSPC, never corrupt; the pool stays consistent', async (t) => {
  const why = loopDisksUnavailable();
  if (why) return skipBecause(t, why);
  const p = await makePool({ redundancy: 'replication:2', disks: 2, extentSize: 64 * 1024, capacities: [24 << 20, 24 << 20] });
  let disk: LoopDisk | undefined;
  let m: MountedPool | undefined;
  try {
    disk = makeLoopDisk(p.root, 'tiny', 8);
    const loopMnt = disk.path;
    const pool = await Pool.open(p.pool);
    await pool.addDisk(loopMnt, 'warm', null, { failureDomain: 'loop' });
    await pool.close();
    m = await MountedPool.start(p.pool, p.mnt);
    const written: typeof FILES = [];
    let enospc = 0;
    for (let i = 0; i < 60; i++) {
      const f = { name: `fill${i}`, seed: 4000 + i, size: 700_000 };
      try {
        fs.writeFileSync(path.join(p.mnt, f.name), patternBytes(f.seed, f.size));
        written.push(f);
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
        enospc++;
        fs.rmSync(path.join(p.mnt, f.name), { force: true });
      }
    }
    assert.ok(enospc > 0, 'the pool should have filled up');
    assert.ok(written.length > 10);
    assert.ok(readsBack(p.mnt, written));
    const tiny = disksOf(p.pool).find((d) => d.path === loopMnt);
    assert.equal(tiny?.health, 'healthy', 'a full disk is not a failing disk');
    assert.equal(await m.stop(), 0);
    assert.equal(cli('fsck', p.pool).code, 0);
  } finally {
    await m?.stop();
    disk?.release();
    cleanup(p.root);
  }
});

test('a slow disk turns degraded: fragment I/O over the latency threshold counts against it', async (t) => {
  const blkio = '/sys/fs/cgroup/blkio';
  const why =
    loopDisksUnavailable() ??
    (fs.existsSync(path.join(blkio, 'tasks')) ? null : 'needs the cgroup v1 blkio controller to throttle a real device');
  if (why) return skipBecause(t, why);
  // One disk, one copy: every read goes to the throttled device.
  const p = await makePool({ redundancy: 'replication:1', disks: 0, extentSize: 64 * 1024 });
  const group = path.join(blkio, `dfs-test-${process.pid}`);
  let disk: LoopDisk | undefined;
  let m: MountedPool | undefined;
  try {
    disk = makeLoopDisk(p.root, 'slowdisk', 64);
    const loopMnt = disk.path;
    const loop = disk.device;
    const pool = await Pool.open(p.pool);
    await pool.addDisk(loopMnt, 'warm', null, { failureDomain: 'loop' });
    pool.tuneReliability({ slow_io_ms: 300, slow_ops_degraded: 2 });
    await pool.close();
    const files = FILES.slice(0, 1).map((f) => ({ ...f, size: 320_000 }));
    await writeSamples(p, files);
    m = await MountedPool.start(p.pool, p.mnt);
    // Throttle the daemon's reads from the loop device to 64 KiB/s: each fragment read takes ~1 s.
    const devNum = execFileSync('lsblk', ['-dno', 'MAJ:MIN', loop], { encoding: 'utf8' }).trim();
    fs.mkdirSync(group);
    fs.writeFileSync(path.join(group, 'blkio.throttle.read_bps_device'), `${devNum} 65536`);
    for (const tid of fs.readdirSync(`/proc/${m.child.pid}/task`)) fs.writeFileSync(path.join(group, 'tasks'), tid);
    execFileSync('sync');
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    assert.ok(readsBack(p.mnt, files), 'a slow disk still returns correct data');
    const throttled = fs.readFileSync(path.join(group, 'blkio.throttle.io_service_bytes'), 'utf8');
    assert.match(throttled, new RegExp(`${devNum} Read [1-9]`), `no reads went through the throttled device: ${throttled}`);
    const slow = disksOf(p.pool).find((d) => d.path === loopMnt);
    assert.equal(slow?.health, 'degraded');
    assert.match(slow?.healthReason ?? '', /slower than 300 ms/);
  } finally {
    if (m?.child.pid && fs.existsSync(group)) {
      for (const tid of fs.readFileSync(path.join(group, 'tasks'), 'utf8').split('\n').filter(Boolean)) {
        try {
          fs.writeFileSync(path.join(blkio, 'tasks'), tid);
        } catch {
          /* thread gone */
        }
      }
    }
    await m?.stop();
    if (fs.existsSync(group)) fs.rmdirSync(group);
    disk?.release();
    cleanup(p.root);
  }
});
