import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { PoolStatus } from '../../engine/report/status.js';
import type { RebuildReport } from '../../engine/heal/rebuild.js';
import type { ScrubReport } from '../../engine/heal/scrub.js';
import { cleanup, cli, cliJson, makePool, MountedPool, patternBytes, writeSamples, rng, type TestPool } from '../helpers/env.js';

const FILES = Array.from({ length: 8 }, (_, i) => ({ name: `f${i}`, seed: 500 + i, size: 70_000 + i * 90_001 }));

function fragmentsOf(p: TestPool): { eid: number; slot: number; disk: string; file: string }[] {
  const py =
    "import sqlite3,sys,json; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); print(json.dumps([dict(eid=r[0], slot=r[1], disk=r[2], path=r[3]) for r in c.execute('select f.eid, f.slot, f.disk, d.path from fragments f join disks d on d.id = f.disk')]))";
  const rows = JSON.parse(execFileSync('python3', ['-c', py, path.join(p.pool, 'metadata.db')], { encoding: 'utf8' })) as {
    eid: number;
    slot: number;
    disk: string;
    path: string;
  }[];
  return rows.map((r) => ({
    ...r,
    file: path.join(r.path, 'dynamicfs/fragments', (r.eid & 0xff).toString(16).padStart(2, '0'), `${r.eid}.${r.slot}`),
  }));
}

function checkAll(mnt: string): void {
  for (const f of FILES) assert.ok(fs.readFileSync(path.join(mnt, f.name)).equals(patternBytes(f.seed, f.size)), `${f.name} reads wrong`);
}

test('bit rot: reads stay correct, scrub names every flipped fragment, --repair restores them, a second scrub is clean', async () => {
  const p = await makePool({ redundancy: 'erasure:2+1', disks: 3, extentSize: 64 * 1024 });
  let m: MountedPool | undefined;
  try {
    await writeSamples(p, FILES);

    // Flip a byte in one fragment of several extents, data and parity slots alike (2+1 tolerates one).
    const random = rng(77);
    const byExtent = new Map<number, ReturnType<typeof fragmentsOf>>();
    for (const f of fragmentsOf(p)) byExtent.set(f.eid, [...(byExtent.get(f.eid) ?? []), f]);
    const flipped: string[] = [];
    for (const frags of [...byExtent.values()].filter((_, i) => i % 3 === 0)) {
      const victim = frags[Math.floor(random() * frags.length)];
      const data = fs.readFileSync(victim.file);
      data[Math.floor(random() * data.length)] ^= 0x5a;
      fs.writeFileSync(victim.file, data);
      flipped.push(`${victim.eid}.${victim.slot}`);
    }
    assert.ok(flipped.length >= 5);
    assert.ok(
      flipped.some((f) => f.endsWith('.2')),
      'at least one parity fragment is flipped',
    );

    m = await MountedPool.start(p.pool, p.mnt);
    checkAll(p.mnt);
    const found = cliJson<ScrubReport>('scrub', p.pool);
    assert.deepEqual(found.issues.map((i) => `${i.eid}.${i.slot}`).sort(), [...flipped].sort());
    assert.ok(found.issues.every((i) => i.problem === 'checksum' && i.paths.length === 1 && !i.repaired));
    assert.equal(found.extents.unrecoverable, 0);
    const repaired = cliJson<ScrubReport>('scrub', p.pool, '--repair');
    assert.equal(repaired.repaired, flipped.length);
    const clean = cliJson<ScrubReport>('scrub', p.pool);
    assert.equal(clean.issues.length, 0);
    assert.equal(clean.extents.healthy, clean.extents.scanned);
    const status = cliJson<PoolStatus>('status', p.pool);
    assert.equal(status.lastScrub?.issues, 0);
    assert.equal(await m.stop(), 0);
    m = await MountedPool.start(p.pool, p.mnt);
    checkAll(p.mnt);
    assert.equal(cli('fsck', p.pool).code, 0);
  } finally {
    await m?.stop();
    cleanup(p.root);
  }
});

for (const { redundancy, disks } of [
  { redundancy: 'replication:2', disks: 4 },
  { redundancy: 'erasure:4+2', disks: 7 },
]) {
  test(`${redundancy}: after a disk is lost, rebuild restores full redundancy and a scrub is clean`, async () => {
    const p = await makePool({ redundancy, disks, extentSize: 64 * 1024 });
    let m: MountedPool | undefined;
    try {
      await writeSamples(p, FILES);
      fs.rmSync(p.disks[1], { recursive: true, force: true });
      m = await MountedPool.start(p.pool, p.mnt);
      const before = cliJson<PoolStatus>('status', p.pool);
      assert.ok(before.extents.degraded > 0);
      const r = cliJson<RebuildReport>('rebuild', p.pool);
      assert.equal(r.extents.failed, 0, JSON.stringify(r.failures));
      assert.equal(r.extents.rebuilt, before.extents.degraded);
      assert.ok(r.bytesWritten > 0);
      const after = cliJson<PoolStatus>('status', p.pool);
      assert.equal(after.extents.degraded, 0);
      assert.equal(after.extents.healthy, after.extents.total);
      // Fragments of one extent still sit on distinct disks, none on the failed one.
      const failedId = before.disks.find((d) => d.health === 'failed')?.id;
      const byExtent = new Map<number, string[]>();
      for (const f of fragmentsOf(p)) byExtent.set(f.eid, [...(byExtent.get(f.eid) ?? []), f.disk]);
      for (const [eid, ds] of byExtent) {
        assert.equal(new Set(ds).size, ds.length, `extent ${eid} has two fragments on one disk`);
        assert.ok(!ds.includes(failedId as string), `extent ${eid} still points at the failed disk`);
      }
      checkAll(p.mnt);
      const s = cliJson<ScrubReport>('scrub', p.pool);
      assert.equal(s.issues.length, 0);
      assert.equal(await m.stop(), 0);
      assert.equal(cli('fsck', p.pool).code, 0);
    } finally {
      await m?.stop();
      cleanup(p.root);
    }
  });
}

test('auto-rebuild: when a disk turns failed, the mount daemon re-protects its extents by itself', async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 4, extentSize: 64 * 1024, autoRebuild: true });
  let m: MountedPool | undefined;
  try {
    await writeSamples(p, FILES);
    m = await MountedPool.start(p.pool, p.mnt);
    assert.equal(cli('set-disk-health', p.pool, p.disks[0], 'failed', '--reason', 'test').code, 0);
    let status = cliJson<PoolStatus>('status', p.pool);
    for (let i = 0; i < 100 && (status.extents.degraded > 0 || status.operation); i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = cliJson<PoolStatus>('status', p.pool);
    }
    assert.equal(status.extents.degraded, 0);
    assert.equal(status.extents.healthy, status.extents.total);
    // The daemon's log arrives through a pipe that spawnSync kept us from reading: give it a moment.
    for (let i = 0; i < 50 && !/rebuild finished/.test(m.log()); i++) await new Promise((r) => setTimeout(r, 100));
    const lines = m
      .log()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { message: string; trace_id: string | null });
    const started = lines.find((l) => l.message.startsWith('auto-rebuild: disk'));
    const finished = lines.find((l) => /^rebuild finished: \d+ rebuilt, 0 failed/.test(l.message));
    assert.ok(started && finished, m.log());
    assert.ok(started.trace_id && started.trace_id === finished.trace_id, 'the automatic rebuild does not carry one trace id');
    checkAll(p.mnt);
  } finally {
    await m?.stop();
    cleanup(p.root);
  }
});
