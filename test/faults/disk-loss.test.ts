import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { PoolStatus } from '../../engine/report/status.js';
import { cleanup, cliJson, makePool, MountedPool, patternBytes, writeSamples } from '../helpers/env.js';

function errno(fn: () => unknown): string {
  try {
    fn();
    return 'OK';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

const FILES = Array.from({ length: 12 }, (_, i) => ({ name: `file-${i}`, seed: 100 + i, size: 50_000 + i * 61_111 }));

for (const { redundancy, disks, lose } of [
  { redundancy: 'replication:2', disks: 4, lose: 1 },
  { redundancy: 'erasure:4+2', disks: 6, lose: 2 },
]) {
  test(`${redundancy}: losing ${lose} disk(s) loses no byte; losing one more gives EIO on exactly the lost ranges`, async () => {
    const p = await makePool({ redundancy, disks, extentSize: 64 * 1024 });
    let m: MountedPool | undefined;
    try {
      await writeSamples(p, FILES);

      // Lose `lose` disks entirely (directory, identity, fragments and metadata mirror).
      for (const d of p.disks.slice(0, lose)) fs.rmSync(d, { recursive: true, force: true });
      m = await MountedPool.start(p.pool, p.mnt);
      for (const f of FILES)
        assert.ok(fs.readFileSync(path.join(p.mnt, f.name)).equals(patternBytes(f.seed, f.size)), `${f.name} after losing ${lose}`);
      const degraded = cliJson<PoolStatus>('status', p.pool);
      assert.equal(degraded.health, 'degraded');
      assert.equal(degraded.extents.unrecoverable, 0);
      assert.ok(degraded.extents.degraded > 0);
      assert.equal(degraded.disks.filter((d) => d.health === 'failed').length, lose);
      assert.match(degraded.disks.find((d) => d.health === 'failed')?.healthReason ?? '', /identity file missing/);

      // One more disk loses its data: only extents that had a fragment there are lost. Remount so
      // nothing is served from the daemon's cache of decoded extents.
      const extra = p.disks[lose];
      fs.rmSync(path.join(extra, 'dynamicfs'), { recursive: true, force: true });
      assert.equal(await m.stop(), 0);
      m = await MountedPool.start(p.pool, p.mnt);
      const status = cliJson<PoolStatus>('status', p.pool);
      assert.equal(status.health, 'critical');
      assert.ok(status.unrecoverable.length > 0, 'status must name the damaged files');
      const damaged = new Map<string, { start: number; end: number }[]>();
      for (const u of status.unrecoverable) damaged.set(u.path, [...(damaged.get(u.path) ?? []), u]);
      let intactFiles = 0;
      for (const f of FILES) {
        const file = path.join(p.mnt, f.name);
        const expected = patternBytes(f.seed, f.size);
        const ranges = damaged.get(`/${f.name}`) ?? [];
        if (ranges.length === 0) {
          assert.ok(fs.readFileSync(file).equals(expected), `${f.name} is not listed as damaged but reads wrong`);
          intactFiles++;
          continue;
        }
        const fd = fs.openSync(file, 'r');
        try {
          for (let off = 0; off < f.size; off += 64 * 1024) {
            const len = Math.min(64 * 1024, f.size - off);
            const lost = ranges.some((r) => off >= r.start && off < r.end);
            const buf = Buffer.alloc(len);
            const outcome = errno(() => fs.readSync(fd, buf, 0, len, off));
            if (lost) assert.equal(outcome, 'EIO', `${f.name} @${off} is listed as lost but did not fail`);
            else {
              assert.equal(outcome, 'OK', `${f.name} @${off} is not listed as lost but failed`);
              assert.ok(buf.equals(expected.subarray(off, off + len)), `${f.name} @${off} reads wrong bytes`);
            }
          }
        } finally {
          fs.closeSync(fd);
        }
      }
      assert.ok(intactFiles < FILES.length, 'losing one disk too many must damage something');
      assert.equal(await m.stop(), 0);
    } finally {
      await m?.stop();
      cleanup(p.root);
    }
  });
}
