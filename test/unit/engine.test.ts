import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { FileSystem } from '../../engine/fs/filesystem.js';
import { fragmentPath, mirrorPath, POOL_METADATA } from '../../engine/pool/layout.js';
import { PoolBusyError } from '../../engine/pool/lock.js';
import { Pool } from '../../engine/pool/pool.js';
import { MirrorThread } from '../../engine/metadata/mirror-thread.js';
import { MetadataStore, ROOT_INO } from '../../engine/metadata/store.js';
import { cleanup, eventually, makePool, patternBytes, tempDir, type TestPool } from '../helpers/env.js';

const pools: TestPool[] = [];
after(() => pools.forEach((p) => cleanup(p.root)));

async function withFs<T>(p: TestPool, fn: (fs: FileSystem, pool: Pool) => Promise<T>): Promise<T> {
  const pool = await Pool.open(p.pool);
  const fs = new FileSystem(pool);
  try {
    return await fn(fs, pool);
  } finally {
    await fs.close();
    await pool.close();
  }
}

async function writeAll(fs: FileSystem, p: string, data: Buffer, pos = 0): Promise<void> {
  const fh = fs.open(p, 2);
  for (let off = 0; off < data.length; off += 100_000) {
    const chunk = data.subarray(off, Math.min(off + 100_000, data.length));
    await fs.write(fh, chunk, chunk.length, pos + off);
  }
  await fs.release(fh);
}

async function readAll(fs: FileSystem, p: string): Promise<Buffer> {
  const size = fs.getattr(p).size;
  const out = Buffer.alloc(size);
  const fh = fs.open(p, 0);
  let pos = 0;
  while (pos < size) pos += await fs.read(fh, out.subarray(pos), Math.min(131072, size - pos), pos);
  await fs.release(fh);
  return out;
}

function fragmentFiles(p: TestPool): number {
  let n = 0;
  for (const d of p.disks) {
    const root = path.join(d, 'dynamicfs', 'fragments');
    for (const sub of readdirSync(root)) n += readdirSync(path.join(root, sub)).length;
  }
  return n;
}

for (const redundancy of ['replication:1', 'replication:2', 'erasure:2+1']) {
  test(`${redundancy}: writes at any offset, overwrites, holes, truncate and reopen read back exactly`, async () => {
    const p = await makePool({ redundancy, disks: 3 });
    pools.push(p);
    const model = Buffer.alloc(400_000);
    await withFs(p, async (fs) => {
      fs.create('/f', 0o644);
      const a = patternBytes(1, 150_000);
      await writeAll(fs, '/f', a, 10_000); // a hole in front
      a.copy(model, 10_000);
      const b = patternBytes(2, 70_000);
      await writeAll(fs, '/f', b, 100_000); // overwrite across an extent boundary
      b.copy(model, 100_000);
      assert.ok((await readAll(fs, '/f')).equals(model.subarray(0, 170_000)));
      await fs.truncate('/f', 50_000); // shrink mid-extent
      model.fill(0, 50_000);
      await fs.truncate('/f', 300_000); // grow: the tail must read as zeros, not old bytes
      assert.ok((await readAll(fs, '/f')).equals(model.subarray(0, 300_000)));
    });
    await withFs(p, async (fs) => assert.ok((await readAll(fs, '/f')).equals(model.subarray(0, 300_000))));
  });
}

test('overwritten and deleted extents free their fragments: no leaks', async () => {
  const p = await makePool({ redundancy: 'erasure:2+1', disks: 3 });
  pools.push(p);
  await withFs(p, async (fs, pool) => {
    await fs.release(fs.create('/a', 0o644));
    for (let round = 0; round < 3; round++) await writeAll(fs, '/a', patternBytes(round, 300_000));
    await fs.release(fs.create('/b', 0o644));
    await writeAll(fs, '/b', patternBytes(9, 200_000));
    fs.rename('/b', '/a'); // replaces /a: its data must go
    const held = fs.open('/a', 0);
    fs.unlink('/a'); // still open: the data stays readable until the last release
    const buf = Buffer.alloc(200_000);
    let pos = 0;
    while (pos < buf.length) pos += await fs.read(held, buf.subarray(pos), buf.length - pos, pos);
    assert.ok(buf.equals(patternBytes(9, 200_000)));
    await fs.release(held);
    await pool.reapGarbage();
    assert.equal(fragmentFiles(p), 0);
    assert.deepEqual(
      pool.disks.all().map((d) => d.used),
      [0, 0, 0],
    );
  });
});

test('fragments of an uncommitted write (crash between write and commit) are removed on open', async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 2 });
  pools.push(p);
  let files: string[] = [];
  await withFs(p, async (_fs, pool) => {
    const placement = pool.disks.all().map((d, slot) => ({ slot, disk: d.id }));
    const eid = pool.store.beginWrite(placement, Date.now());
    files = pool.disks.all().map((d, slot) => fragmentPath(d.path, eid, slot));
    for (const f of files) writeFileSync(f, 'half-written');
  });
  await withFs(p, async () => undefined); // the next open finishes what the crash left
  for (const f of files) assert.equal(existsSync(f), false, `${f} should have been reclaimed`);
});

test('one process owns a pool: a second open fails naming the owner', async () => {
  const p = await makePool({ disks: 2 });
  pools.push(p);
  await withFs(p, async () => {
    await assert.rejects(Pool.open(p.pool), (e: Error) => e instanceof PoolBusyError && /in use by process \d+/.test(e.message));
  });
});

test('metadata survives losing the pool directory copy: restored from a disk mirror', async () => {
  const p = await makePool({ disks: 3 });
  pools.push(p);
  const data = patternBytes(5, 123_456);
  await withFs(p, async (fs) => {
    fs.create('/keep', 0o644);
    await writeAll(fs, '/keep', data);
  });
  for (const f of readdirSync(p.pool)) if (f.startsWith(POOL_METADATA)) rmSync(path.join(p.pool, f));
  await withFs(p, async (fs) => assert.ok((await readAll(fs, '/keep')).equals(data)));
});

test('the mirror thread copies the metadata while the event loop keeps committing, and the copy restores the pool', async () => {
  const p = await makePool({ disks: 3 });
  pools.push(p);
  const data = patternBytes(6, 400_000);
  await withFs(p, async (fs, pool) => {
    pool.startMirrorThread();
    fs.create('/a', 0o644);
    await writeAll(fs, '/a', data);
    const copied = pool.mirrorNow();
    for (let i = 0; i < 50; i++) await fs.release(fs.create(`/n${i}`, 0o644));
    await copied;
  });
  // close() made the last copy on the thread, after the 50 files existed.
  for (const f of readdirSync(p.pool)) if (f.startsWith(POOL_METADATA)) rmSync(path.join(p.pool, f));
  await withFs(p, async (fs) => {
    assert.ok((await readAll(fs, '/a')).equals(data));
    assert.equal(fs.readdir('/').filter((n) => n.startsWith('n')).length, 50);
  });
});

test('mirror copies wait for a quiet spell, and no change waits longer than the longest delay', async () => {
  const p = await makePool({ disks: 2 });
  pools.push(p);
  await withFs(p, async (_fs, pool) => {
    const mirror = mirrorPath(pool.disks.all()[0].path);
    const copiedAt = (): number => statSync(mirror).mtimeMs;
    const copies: number[] = [];
    let seen = copiedAt();
    const watch = (): void => {
      const m = copiedAt();
      if (m !== seen) copies.push(Date.now());
      seen = m;
    };
    // A change every 40 ms for 1.5 s: never 300 ms of quiet, so copies come from the 600 ms limit only.
    const start = Date.now();
    while (Date.now() - start < 1500) {
      pool.scheduleMirror(300, 600);
      await delay(40);
      watch();
    }
    assert.ok(copies.length >= 1 && copies.length <= 3, `copies during the burst at ${copies.map((t) => t - start).join(', ')} ms`);
    assert.ok(copies[0] - start >= 550, `the first copy came ${copies[0] - start} ms into the burst, before the 600 ms limit`);
    // Then quiet: one more copy about 300 ms after the last change.
    const last = Date.now();
    const during = copies.length;
    while (copies.length === during && Date.now() - last < 3000) {
      await delay(20);
      watch();
    }
    assert.equal(copies.length, during + 1, 'a copy after the burst');
    assert.ok(copies[during] - last >= 250, `copied ${copies[during] - last} ms after the last change, before 300 ms of quiet`);
  });
});

test('a namespace change alone reaches the metadata mirrors once changes settle', async () => {
  const p = await makePool({ disks: 2 });
  pools.push(p);
  await withFs(p, async (fs, pool) => {
    pool.startMirrorThread();
    const mirror = mirrorPath(pool.disks.all()[0].path);
    // Read a copy of the mirror, so that opening it does not leave WAL files beside the mirror itself.
    const mirrorHas = (name: string): boolean => {
      const copy = path.join(p.root, 'mirror-copy.db');
      copyFileSync(mirror, copy);
      const s = new MetadataStore(copy);
      try {
        return s.lookup(ROOT_INO, name) !== undefined;
      } finally {
        s.close();
        for (const f of readdirSync(p.root)) if (f.startsWith('mirror-copy.db')) rmSync(path.join(p.root, f));
      }
    };
    fs.mkdir('/only-a-directory', 0o755);
    assert.equal(mirrorHas('only-a-directory'), false);
    // Well before unmount, which copies anyway.
    await eventually('the new directory in the mirror', () => (mirrorHas('only-a-directory') ? true : undefined), 6000);
  });
});

test('a mirror thread that cannot start says why, and the copy is refused, not silently skipped', async () => {
  const root = tempDir();
  try {
    const thread = new MirrorThread(path.join(root, 'no-such.db'));
    await assert.rejects(thread.copyTo(path.join(root, 'copy.db')), /metadata mirror thread ended: cannot open .*no-such\.db/);
    assert.equal(thread.running, false);
    assert.equal(existsSync(path.join(root, 'copy.db')), false);
  } finally {
    cleanup(root);
  }
});

test('fsync commits under synchronous=FULL and goes back to NORMAL', async () => {
  const p = await makePool({ disks: 2 });
  pools.push(p);
  await withFs(p, async (_fs, pool) => {
    const before = Number(pool.store.getMeta('synced_at') ?? 0);
    pool.store.makeDurable();
    assert.ok(Number(pool.store.getMeta('synced_at')) >= before && pool.store.getMeta('synced_at') !== undefined);
    assert.equal(pool.store.db.pragma('synchronous', { simple: true }), 1, 'NORMAL again');
  });
});

test('a rebuilt fragment whose bytes do not match its recorded checksum is refused before it is written', async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 3 });
  pools.push(p);
  await withFs(p, async (fs, pool) => {
    await fs.release(fs.create('/f', 0o644));
    await writeAll(fs, '/f', patternBytes(3, 300_000));
    const ext = pool.store.extent(fs.getattr('/f').ino, 0);
    assert.ok(ext);
    const [frag, other] = pool.store.fragments(ext.eid);
    const spare = pool.disks.all().find((d) => d.id !== frag.disk && d.id !== other.disk);
    assert.ok(spare);
    pool.setDiskHealth(frag.disk, 'failed', 'test');
    const before = fragmentFiles(p);
    const wrong = Buffer.from(patternBytes(4, 300_000).subarray(0, ext.length));
    await assert.rejects(
      fs.data.extents.writeRepair(ext, frag, wrong, [other.disk], { readBack: false }),
      /does not match its recorded checksum/,
    );
    assert.equal(fragmentFiles(p), before, 'nothing written');
    assert.equal(pool.store.fragment(ext.eid, frag.slot)?.disk, frag.disk, 'metadata unchanged');
    const right = Buffer.from(patternBytes(3, 300_000).subarray(0, ext.length));
    assert.equal(await fs.data.extents.writeRepair(ext, frag, right, [other.disk], { readBack: false }), spare.id);
    assert.equal(pool.store.fragment(ext.eid, frag.slot)?.disk, spare.id);
  });
});

test('the read path sees fragment rows as they change: relocated, replaced, loaded a window at a time', async () => {
  const p = await makePool({ redundancy: 'replication:1', disks: 3 });
  pools.push(p);
  await withFs(p, async (fs, pool) => {
    await fs.release(fs.create('/f', 0o644));
    const E = pool.settings.extentSize;
    await writeAll(fs, '/f', patternBytes(3, 3 * E));
    const ino = fs.getattr('/f').ino;
    const store = pool.store;
    const exts = [0, 1, 2].map((i) => store.extent(ino, i));
    assert.ok(
      exts.every((e) => e),
      'three extents',
    );
    for (const e of exts) if (e) assert.deepEqual(store.fragmentsForRead(e), store.fragments(e.eid));
    const first = exts[0] as NonNullable<(typeof exts)[0]>;
    const [frag] = store.fragments(first.eid);
    const disk = (id: string) => pool.disks.all().find((d) => d.id === id) as { id: string; path: string };
    const to = pool.disks.all().find((d) => d.id !== frag.disk)?.id as string;
    store.beginRepair(frag.eid, frag.slot, to, Date.now());
    const target = fragmentPath(disk(to).path, frag.eid, frag.slot);
    mkdirSync(path.dirname(target), { recursive: true });
    copyFileSync(fragmentPath(disk(frag.disk).path, frag.eid, frag.slot), target);
    assert.ok(store.commitRelocation(frag.eid, frag.slot, frag.disk, to, frag.size));
    assert.equal(store.fragmentsForRead(first)[0].disk, to, 'a relocated fragment is read from its new disk');
    await writeAll(fs, '/f', patternBytes(4, E));
    const replaced = store.extent(ino, 0);
    assert.ok(replaced && replaced.eid !== first.eid);
    if (replaced) assert.deepEqual(store.fragmentsForRead(replaced), store.fragments(replaced.eid));
    assert.deepEqual(store.fragmentsForRead(first), [], 'the replaced version has no fragments left');
  });
});
