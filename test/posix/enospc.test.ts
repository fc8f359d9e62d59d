/**
 * Issue 18 (POSIX semantics): what a full pool and bad fragments look like to a program, through a
 * real mount. A write(2) that returned success is never lost in silence: the space it needs is held
 * when it is accepted, so the pool refuses the write itself with ENOSPC; a flush that still fails
 * (a disk filled from outside) leaves a range that reads EIO, a size that does not cover it, and an
 * error for fsync. Bad fragments count against the disk that holds them, once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { FsckReport } from '../../engine/check/fsck.js';
import type { Diagnosis } from '../../engine/report/diagnose.js';
import type { DiskReport, PoolStatus } from '../../engine/report/status.js';
import type { ScrubReport } from '../../engine/heal/scrub.js';
import { fragmentPath } from '../../engine/pool/layout.js';
import { Pool } from '../../engine/pool/pool.js';
import { cleanup, cliJson, makePool, MountedPool, patternBytes, type TestPool } from '../helpers/env.js';
import { loopDisksUnavailable, makeLoopDisk, type LoopDisk } from '../helpers/loop-disk.js';
import { skipBecause } from '../helpers/skip.js';

const MiB = 2 ** 20;
const disksOf = (pool: string) => cliJson<{ disks: DiskReport[] }>('list-disks', pool).disks;
const errnoOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
  return undefined;
};

interface Rig {
  p: TestPool;
  loops: LoopDisk[];
  m?: MountedPool;
}

/** A pool on `sizesMiB.length` small ext4 loop devices, each its own failure domain; null (skipped) without root. */
async function loopPool(t: TestContext, sizesMiB: number[], redundancy: string, extentSize: number): Promise<Rig | null> {
  const why = loopDisksUnavailable();
  if (why) {
    skipBecause(t, why);
    return null;
  }
  const p = await makePool({ disks: 0, redundancy, extentSize });
  const rig: Rig = { p, loops: [] };
  try {
    sizesMiB.forEach((size, i) => rig.loops.push(makeLoopDisk(p.root, `loop${i}`, size)));
    const pool = await Pool.open(p.pool);
    try {
      for (const [i, l] of rig.loops.entries()) await pool.addDisk(l.path, 'warm', null, { failureDomain: `loop${i}` });
    } finally {
      await pool.close();
    }
  } catch (err) {
    release(rig);
    throw err;
  }
  return rig;
}

/** Unmounts (lazily when the daemon is stuck), detaches the loop devices, removes everything. */
async function teardown(rig: Rig | null): Promise<void> {
  if (!rig) return;
  try {
    await rig.m?.stop();
  } finally {
    release(rig);
  }
}

function release(rig: Rig): void {
  for (const l of rig.loops) l.release();
  cleanup(rig.p.root);
}

/** Writes `data` in `chunk`-byte write(2) calls until one fails; returns the bytes acknowledged and that error's code. */
function writeUntilFull(
  file: string,
  data: Buffer,
  chunk: number,
): { acked: number; code: string | undefined; closeCode: string | undefined } {
  const fd = fs.openSync(file, 'w');
  let acked = 0;
  let code: string | undefined;
  while (acked < data.length) {
    try {
      // A short count is an acknowledgement of that many bytes; the retry of the rest fails.
      acked += fs.writeSync(fd, data, acked, Math.min(chunk, data.length - acked), acked);
    } catch (err) {
      code = (err as NodeJS.ErrnoException).code;
      break;
    }
  }
  return { acked, code, closeCode: errnoOf(() => fs.closeSync(fd)) };
}

/** 'the same', or where and how a file's bytes differ from `expected`. */
function sameAs(file: string, expected: Buffer): string {
  let back: Buffer;
  try {
    back = fs.readFileSync(file);
  } catch (err) {
    return `unreadable: ${(err as NodeJS.ErrnoException).code}`;
  }
  if (back.equals(expected)) return 'the same';
  const E = MiB;
  const bad: string[] = [];
  for (let at = 0; at < Math.min(back.length, expected.length); at += E) {
    const got = back.subarray(at, at + E);
    if (got.equals(expected.subarray(at, at + got.length))) continue;
    bad.push(`${at / E}${got.every((b) => b === 0) ? ' (zeros)' : ''}`);
  }
  return `size ${back.length} (expected ${expected.length}); MiB that differ: ${bad.join(', ') || 'none'}`;
}

/** Fills the filesystem at `dir` from outside the pool (another program writing there). */
function fillFromOutside(dir: string): void {
  const fd = fs.openSync(path.join(dir, 'filler'), 'w');
  const block = Buffer.alloc(MiB, 7);
  try {
    for (let size = MiB; size >= 1024;) {
      try {
        fs.writeSync(fd, block, 0, size);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        size /= 2;
      }
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The fragment files of extent `idx` of inode `ino`, with their disks (the pool must not be mounted). */
async function fragmentFiles(poolDir: string, ino: number, idx: number): Promise<{ file: string; disk: string; slot: number }[]> {
  const pool = await Pool.open(poolDir);
  try {
    const ext = pool.store.extent(ino, idx);
    assert.ok(ext, `inode ${ino} has an extent ${idx}`);
    return pool.store.fragments(ext.eid).map((f) => ({
      file: fragmentPath((pool.disks.get(f.disk) as { path: string }).path, f.eid, f.slot),
      disk: f.disk,
      slot: f.slot,
    }));
  } finally {
    await pool.close();
  }
}

/** Flips bytes in the middle of a fragment file: its checksum no longer matches. */
function corrupt(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, Buffer.from('not the bytes that were written'), 0, 31, 4096);
  } finally {
    fs.closeSync(fd);
  }
}

for (const c of [
  { what: 'a 30 MiB write on two 24 MiB disks (replication:2)', sizes: [24, 24], redundancy: 'replication:2', write: 30, fits: [16, 24] },
  { what: 'a 40 MiB write on three 16 MiB disks (erasure:2+1)', sizes: [16, 16, 16], redundancy: 'erasure:2+1', write: 40, fits: [20, 32] },
]) {
  test(`${c.what}: every acknowledged byte reads back, the first write past the space fails with ENOSPC`, async (t) => {
    const rig = await loopPool(t, c.sizes, c.redundancy, MiB);
    if (!rig) return;
    try {
      rig.m = await MountedPool.start(rig.p.pool, rig.p.mnt);
      const file = path.join(rig.p.mnt, 'big');
      const data = patternBytes(18, c.write * MiB);
      const r = writeUntilFull(file, data, MiB);
      t.diagnostic(`acknowledged ${r.acked} of ${data.length} bytes, then ${r.code}`);
      assert.equal(r.code, 'ENOSPC', `the write past the pool's space fails with ENOSPC (acknowledged ${r.acked} bytes)`);
      assert.equal(sameAs(file, data.subarray(0, r.acked)), 'the same', 'every acknowledged byte reads back as written');
      assert.equal(r.closeCode, undefined, 'close reports nothing: every acknowledged byte was flushed');
      // The policy's overhead is counted: neither far short of the disks' room nor past it.
      assert.ok(r.acked >= c.fits[0] * MiB && r.acked < c.fits[1] * MiB, `acknowledged ${r.acked} bytes`);
      // And from the disks, after a clean unmount.
      assert.equal(await rig.m.stop(), 0);
      rig.m = await MountedPool.start(rig.p.pool, rig.p.mnt);
      assert.equal(sameAs(file, data.subarray(0, r.acked)), 'the same');
    } finally {
      await teardown(rig);
    }
  });
}

test('a disk filled from outside before the flush: the lost range reads EIO, the size does not cover it, fsync reports it once, a rewrite heals it', async (t) => {
  const rig = await loopPool(t, [24, 24], 'replication:2', MiB);
  if (!rig) return;
  try {
    rig.m = await MountedPool.start(rig.p.pool, rig.p.mnt);
    const file = path.join(rig.p.mnt, 'f');
    const first = patternBytes(31, 2 * MiB);
    const fd = fs.openSync(file, 'w+');
    let closed: string | undefined;
    try {
      fs.writeSync(fd, first, 0, first.length, 0);
      fs.fsyncSync(fd);
      // Acknowledged, still in the daemon's buffers: a tail past the committed size, and an
      // overwrite of part of extent 0.
      assert.equal(fs.writeSync(fd, patternBytes(32, MiB / 2), 0, MiB / 2, 2 * MiB), MiB / 2);
      assert.equal(fs.writeSync(fd, patternBytes(33, 64 * 1024), 0, 64 * 1024, 0), 64 * 1024);
      for (const l of rig.loops) fillFromOutside(l.path);
      const code = errnoOf(() => fs.fsyncSync(fd));
      assert.equal(code, 'ENOSPC', 'fsync reports the failed flush');
      assert.equal(
        errnoOf(() => fs.fsyncSync(fd)),
        undefined,
        'and reports it once',
      );
      assert.equal(fs.fstatSync(fd).size, 2 * MiB, 'the size does not grow over the lost tail');
      const buf = Buffer.alloc(MiB);
      assert.equal(
        errnoOf(() => fs.readSync(fd, buf, 0, MiB, 0)),
        'EIO',
        'the overwritten extent reads EIO, not zeros or its older bytes',
      );
      assert.equal(fs.readSync(fd, buf, 0, MiB, MiB), MiB);
      assert.ok(buf.equals(first.subarray(MiB)), 'the extent nobody touched reads back');
      assert.equal(
        errnoOf(() => fs.writeSync(fd, first, 0, MiB, 0)),
        'ENOSPC',
        'the disks are full: a new write is refused up front',
      );
    } finally {
      closed = errnoOf(() => fs.closeSync(fd));
    }
    assert.equal(closed, undefined, 'close does not report again what fsync reported');
    const status = cliJson<PoolStatus>('status', rig.p.pool);
    assert.equal(status.extents.unrecoverable, 1, 'the lost extent is reported');
    assert.deepEqual(
      status.unrecoverable.map((u) => [u.start, u.end]),
      [[0, MiB]],
    );
    // Still lost after a remount: the mark is in the metadata.
    assert.equal(await rig.m.stop(), 0);
    rig.m = await MountedPool.start(rig.p.pool, rig.p.mnt);
    assert.equal(
      errnoOf(() => fs.readFileSync(file)),
      'EIO',
    );
    assert.equal(fs.statSync(file).size, 2 * MiB);
    const check = cliJson<FsckReport>('fsck', rig.p.pool);
    assert.deepEqual(
      check.problems.map((x) => x.kind),
      ['lost-extent'],
      'fsck names the lost extent',
    );
    // Room again; a rewrite of the whole extent needs nothing of the lost bytes.
    for (const l of rig.loops) fs.rmSync(path.join(l.path, 'filler'));
    const fd2 = fs.openSync(file, 'r+');
    try {
      assert.equal(fs.writeSync(fd2, first, 0, MiB, 0), MiB);
      fs.fsyncSync(fd2);
    } finally {
      fs.closeSync(fd2);
    }
    assert.ok(fs.readFileSync(file).equals(first));
    assert.equal(cliJson<PoolStatus>('status', rig.p.pool).extents.unrecoverable, 0);
    assert.equal(cliJson<FsckReport>('fsck', rig.p.pool).clean, true);
  } finally {
    await teardown(rig);
  }
});

test('space freed by a delete is there for the next write at once, also after the pool was full', async (t) => {
  // Small extents: a delete leaves many fragment files for the reaper.
  const rig = await loopPool(t, [24, 24], 'replication:2', 64 * 1024);
  if (!rig) return;
  try {
    rig.m = await MountedPool.start(rig.p.pool, rig.p.mnt);
    const data = patternBytes(41, 30 * MiB);
    for (let round = 0; round < 3; round++) {
      const a = path.join(rig.p.mnt, `a${round}`);
      const full = writeUntilFull(a, data, MiB);
      assert.equal(full.code, 'ENOSPC');
      assert.ok(full.acked > 16 * MiB, `round ${round}: ${full.acked} bytes fit`);
      fs.rmSync(a);
      // As much again, right after the delete.
      const b = path.join(rig.p.mnt, `b${round}`);
      const again = writeUntilFull(b, data.subarray(0, full.acked), MiB);
      assert.equal(again.code, undefined, `round ${round}: the write after the delete fails with ${again.code} after ${again.acked} bytes`);
      assert.equal(again.closeCode, undefined);
      assert.equal(sameAs(b, data.subarray(0, full.acked)), 'the same');
      fs.rmSync(b);
    }
  } finally {
    await teardown(rig);
  }
});

test('both copies of one extent bad: EIO to the reader, each disk counted once for its own fragment, writes still go through', async () => {
  const p = await makePool({ disks: 2, redundancy: 'replication:2', extentSize: MiB });
  const rig: Rig = { p, loops: [] };
  try {
    rig.m = await MountedPool.start(p.pool, p.mnt);
    const file = path.join(p.mnt, 'f');
    const data = patternBytes(51, 3 * MiB);
    fs.writeFileSync(file, data);
    const ino = fs.statSync(file).ino;
    assert.equal(await rig.m.stop(), 0);
    const frags = await fragmentFiles(p.pool, ino, 1);
    assert.equal(frags.length, 2);
    for (const f of frags) corrupt(f.file);
    rig.m = await MountedPool.start(p.pool, p.mnt);
    // A reader that tries again and again, and the kernel's own retries.
    for (let i = 0; i < 6; i++)
      assert.equal(
        errnoOf(() => fs.readFileSync(file)),
        'EIO',
      );
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(MiB);
      assert.equal(fs.readSync(fd, buf, 0, MiB, 2 * MiB), MiB);
      assert.ok(buf.equals(data.subarray(2 * MiB)), 'the other extents read back');
    } finally {
      fs.closeSync(fd);
    }
    const disks = disksOf(p.pool);
    for (const d of disks) {
      assert.deepEqual(d.errors, { read: 0, write: 0, checksum: 1 }, `disk ${d.id} is counted once, for its own fragment`);
      assert.equal(d.health, 'healthy', `disk ${d.id} is ${d.health}: ${d.healthReason}`);
    }
    const diagnosis = cliJson<Diagnosis>('diagnose', p.pool);
    assert.ok(
      diagnosis.issues.some((i) => i.check === 'extents.unrecoverable'),
      `diagnose names the lost extent: ${JSON.stringify(diagnosis.issues.map((i) => i.check))}`,
    );
    const later = patternBytes(52, 4 * MiB);
    fs.writeFileSync(path.join(p.mnt, 'later'), later);
    assert.ok(fs.readFileSync(path.join(p.mnt, 'later')).equals(later), 'a later write goes to the healthy disks');
  } finally {
    await teardown(rig);
  }
});

test('one bad copy: the read is served from the other, and only the disk holding the bad one is counted, once', async () => {
  const p = await makePool({ disks: 2, redundancy: 'replication:2', extentSize: MiB });
  const rig: Rig = { p, loops: [] };
  try {
    rig.m = await MountedPool.start(p.pool, p.mnt);
    const file = path.join(p.mnt, 'f');
    const data = patternBytes(61, 3 * MiB);
    fs.writeFileSync(file, data);
    const ino = fs.statSync(file).ino;
    assert.equal(await rig.m.stop(), 0);
    // The copy in slot 0 is the one a read tries first.
    const bad = (await fragmentFiles(p.pool, ino, 1)).find((f) => f.slot === 0);
    assert.ok(bad);
    corrupt(bad.file);
    for (let mount = 0; mount < 2; mount++) {
      rig.m = await MountedPool.start(p.pool, p.mnt);
      assert.ok(fs.readFileSync(file).equals(data), 'every byte is served from the good copy');
      if (mount === 1) {
        const scrub = cliJson<ScrubReport>('scrub', p.pool);
        assert.deepEqual(
          scrub.issues.map((i) => [i.disk, i.problem]),
          [[bad.disk, 'checksum']],
        );
      }
      assert.equal(await rig.m.stop(), 0);
    }
    rig.m = await MountedPool.start(p.pool, p.mnt);
    for (const d of disksOf(p.pool)) {
      const expected: number = d.id === bad.disk ? 1 : 0;
      assert.deepEqual(d.errors, { read: 0, write: 0, checksum: expected }, `disk ${d.id}`);
      assert.equal(d.health, 'healthy');
    }
  } finally {
    await teardown(rig);
  }
});
