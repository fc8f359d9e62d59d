import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cleanup, cli, cliJson, makePool, MountedPool } from '../helpers/env.js';

interface DiskView {
  id: string;
  path: string;
}
const diskPaths = (pool: string) =>
  cliJson<{ disks: DiskView[] }>('list-disks', pool)
    .disks.map((d) => d.path)
    .sort();

test('add-disk refuses paths inside or above a pool, its mount, another pool, system directories and the allowed roots; changes nothing', async () => {
  const p = await makePool({ disks: 2 });
  const other = await makePool({ disks: 2 });
  const m = await MountedPool.start(p.pool, p.mnt);
  try {
    fs.mkdirSync(path.join(p.mnt, 'inside'));
    const before = diskPaths(p.pool);
    const refusals: [string, string[], RegExp][] = [
      ["the pool's own mount point (its daemon would write through itself)", [p.mnt], /is inside the DynamicFS mount/],
      ['a directory in the mount', [path.join(p.mnt, 'inside')], /is inside the DynamicFS mount/],
      ['the pool directory', [p.pool], /pool directory/],
      ['a parent of the pool', [p.root], /holds the pool directory|holds the DynamicFS mount/],
      ["another pool's directory", [other.pool], /is the pool directory/],
      ["another pool's parent", [other.root], /holds .*(the pool directory|a disk of a pool)/],
      ["another pool's disk", [other.disks[0]], /belongs to another pool|is inside .*a disk of a pool|another pool/],
      ['inside a disk of this pool', [path.join(p.disks[0], 'dynamicfs')], /is inside disk/],
      ['/', ['/'], /holds|system directory/],
      ['/etc', ['/etc'], /system directory \/etc/],
      ['the kubelet directory', ['/var/lib/kubelet'], /system directory \/var\/lib\/kubelet/],
      ['/tmp itself', ['/tmp'], /system directory/],
    ];
    for (const [what, args, want] of refusals) {
      const started = Date.now();
      const r = cli('add-disk', p.pool, ...args);
      assert.notEqual(r.code, 0, `${what}: added`);
      assert.match(r.stderr, want, `${what}: ${r.stderr}`);
      assert.ok(Date.now() - started < 15_000, `${what}: took ${Date.now() - started} ms`);
    }
    assert.deepEqual(diskPaths(p.pool), before, 'a refused add-disk changed the pool');
    // A copy of a disk's identity file is not the disk: it is refused while the disk is where it was.
    const copy = path.join(p.root, 'copy');
    fs.mkdirSync(copy);
    fs.copyFileSync(path.join(p.disks[0], '.dynamicfs-disk.json'), path.join(copy, '.dynamicfs-disk.json'));
    const copied = cli('add-disk', p.pool, copy);
    assert.notEqual(copied.code, 0);
    assert.match(copied.stderr, /is still at .* holds a copy of its identity file/);
    // The kernel's trees are never disks, override or not.
    for (const proc of [`/proc/${m.child.pid}/root${p.root}`, '/sys/fs/cgroup/dfs-test', '/dev/shm']) {
      const r = cli('add-disk', p.pool, proc, '--allow-any-path');
      assert.notEqual(r.code, 0, `${proc} was added`);
      assert.match(r.stderr, /system directory \/(proc|sys|dev)/);
    }
    // A disk that cannot be prepared (a read-only directory) leaves nothing behind.
    const ro = path.join(p.root, 'ro');
    fs.mkdirSync(ro);
    execFileSync('mount', ['--bind', ro, ro]);
    execFileSync('mount', ['-o', 'remount,bind,ro', ro]);
    try {
      const r = cli('add-disk', p.pool, ro, '--failure-domain', 'ro');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /cannot prepare disk .*EROFS/);
      assert.deepEqual(fs.readdirSync(ro), []);
    } finally {
      spawnSync('umount', [ro]);
    }
    // A file that only happens to be called pool.json does not make a directory a pool.
    const lookalike = path.join(p.root, 'lookalike');
    fs.mkdirSync(path.join(lookalike, 'app'), { recursive: true });
    fs.writeFileSync(path.join(lookalike, 'app', 'pool.json'), '{"name": "a node.js pool config"}');
    assert.equal(cli('add-disk', p.pool, lookalike, '--failure-domain', 'lookalike').code, 0, 'an unrelated pool.json refused a disk');
    before.push(lookalike);
    before.sort();
    assert.ok(!fs.existsSync(path.join(other.root, '.dynamicfs-disk.json')));
    assert.ok(!fs.existsSync(path.join(p.root, 'dynamicfs')));
    // The daemon still answers its mount and its socket.
    assert.deepEqual(fs.readdirSync(p.mnt), ['inside']);

    // Allowed roots: outside is refused unless the administrator says --allow-any-path; inside is fine.
    const roots = path.join(p.root, 'roots.yaml');
    const allowed = path.join(p.root, 'allowed');
    const outside = path.join(p.root, 'outside');
    for (const d of [allowed, path.join(allowed, 'd3'), outside]) fs.mkdirSync(d);
    fs.writeFileSync(roots, `security:\n  disk_roots: [${allowed}]\n`);
    cliJson('config', 'apply', p.pool, roots);
    const r = cli('add-disk', p.pool, outside);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /outside the allowed disk roots .*--allow-any-path/);
    assert.equal(cli('add-disk', p.pool, path.join(allowed, 'd3'), '--failure-domain', 'd3').code, 0);
    assert.equal(cli('add-disk', p.pool, outside, '--allow-any-path', '--failure-domain', 'outside').code, 0);
    // The override lifts the roots, never the rules that protect pools.
    const still = cli('add-disk', p.pool, p.pool, '--allow-any-path');
    assert.notEqual(still.code, 0);
    assert.doesNotMatch(still.stderr, /--allow-any-path to add/);
    assert.deepEqual(diskPaths(p.pool), [...before, path.join(allowed, 'd3'), outside].sort());
  } finally {
    await m.stop();
    cleanup(p.root);
    cleanup(other.root);
  }
});
