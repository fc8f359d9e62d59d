import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { BufferPool } from '../../engine/data/buffer-pool.js';
import { FragmentWorkers, IO_THREAD_NICE } from '../../engine/data/fragment-workers.js';
import { checksum } from '../../engine/integrity/checksum.js';
import { cleanup, tempDir } from '../helpers/env.js';

/** Niceness of each of this process's threads, from /proc (field 19 of a task's stat). */
function threadNiceness(): number[] {
  return fs.readdirSync('/proc/self/task').map((tid) => {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

/** Fragment I/O threads and a scratch directory, both gone when the test ends. */
function setup(t: TestContext): { io: FragmentWorkers; dir: string } {
  const io = new FragmentWorkers();
  t.after(() => io.close());
  const dir = tempDir('dynamicfs-frag-');
  t.after(() => cleanup(dir));
  return { io, dir };
}

test('fragment I/O threads run at their niceness, the rest of the process does not', async (t) => {
  const io = new FragmentWorkers();
  t.after(() => io.close());
  const before = threadNiceness().filter((n) => n === IO_THREAD_NICE).length;
  // One job per thread at once: each goes to the least loaded thread, so every thread has started.
  await Promise.all(Array.from({ length: io.threads }, () => io.hash('xxh3', Buffer.alloc(1 << 20, 1))));
  const after = threadNiceness();
  assert.equal(after.filter((n) => n === IO_THREAD_NICE).length - before, io.threads, `niceness of the threads: ${after.join(' ')}`);
  assert.ok(
    after.some((n) => n === 0),
    'the main thread keeps its priority',
  );
});

test('slab memory is registered once and reads and hashes land in the right ranges', async (t) => {
  const { io, dir } = setup(t);
  const pool = new BufferPool(64 * 1024, 8);
  const contents = Array.from({ length: 6 }, () => randomBytes(64 * 1024));
  contents.forEach((c, i) => fs.writeFileSync(path.join(dir, `f${i}`), c));
  const bufs = contents.map(() => pool.take());
  const replies = await Promise.all(contents.map((_, i) => io.read(path.join(dir, `f${i}`), dir, 'xxh3', bufs[i])));
  replies.forEach((r, i) => {
    assert.ok(r.ok, `read ${i}`);
    assert.equal(r.sum, checksum('xxh3', contents[i]));
    assert.ok(bufs[i].equals(contents[i]), `bytes of read ${i}`);
  });
  // Memory outside any slab travels with the job.
  const loose = Buffer.from(new SharedArrayBuffer(70 * 1024));
  loose.set(randomBytes(loose.length));
  assert.equal(await io.hash('xxh3', loose), checksum('xxh3', loose));
  const plain = randomBytes(96 * 1024);
  assert.equal(await io.hash('xxh64', plain), checksum('xxh64', plain));
  const missing = await io.read(path.join(dir, 'nope'), dir, 'xxh3', pool.take());
  assert.deepEqual([missing.ok, !missing.ok && missing.code], [false, 'ENOENT']);
});

test('a fragment write lands byte for byte, returns its checksum once asked, and reports the system error', async (t) => {
  const { io, dir } = setup(t);
  const pool = new BufferPool(256 * 1024, 4);
  const buf = pool.take();
  buf.set(randomBytes(buf.length));
  const sum = await io.write(path.join(dir, 'a'), dir, buf, 'xxh3');
  assert.equal(sum, checksum('xxh3', buf));
  assert.ok(fs.readFileSync(path.join(dir, 'a')).equals(buf));
  const odd = buf.subarray(0, 1000);
  fs.writeFileSync(path.join(dir, 'b'), randomBytes(5000));
  const unasked = await io.write(path.join(dir, 'b'), dir, odd, null);
  assert.equal(unasked, null);
  assert.ok(fs.readFileSync(path.join(dir, 'b')).equals(odd), 'an existing file is truncated to the new bytes');
  await assert.rejects(
    io.write(path.join(dir, 'no-such-dir', 'c'), dir, buf, 'xxh3'),
    (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
  );
});

test(
  'a fragment I/O thread that dies fails the jobs it held and is replaced; later jobs still complete',
  { timeout: 30_000 },
  async (t) => {
    const io = new FragmentWorkers();
    t.after(() => io.close());
    const pool = new BufferPool(1 << 20, 2 * io.threads + 2);
    const buf = pool.take();
    buf.fill(5);
    // The first job starts the threads and goes to thread 0; ending that thread before it has started
    // means the job can only be answered by the death notice.
    const held = io.hash('xxh3', buf);
    await io.killThreadForTest(0);
    await assert.rejects(held, /fragment I\/O thread died/);
    const sums = await Promise.all(Array.from({ length: 2 * io.threads }, () => io.hash('xxh3', buf)));
    assert.deepEqual(
      new Set(sums),
      new Set([checksum('xxh3', buf)]),
      'every thread, the replacement included, answers with slab memory it was sent before',
    );
  },
);
