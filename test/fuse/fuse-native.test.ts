import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanup, eventually, makePool, MountedPool, patternBytes, type TestPool } from '../helpers/env.js';

// As root the daemon serves /dev/fuse itself (operations.test.ts covers that path in full). A
// mount without root goes through fuse-native; DYNAMICFS_FUSE=fuse-native forces it here, so the
// binding's adapter keeps being exercised: data, namespace, and the fixes it needs.
describe('the fuse-native path (mounts without root)', () => {
  let p: TestPool;
  let m: MountedPool;
  before(async () => {
    p = await makePool({ redundancy: 'replication:2', disks: 3 });
    process.env.DYNAMICFS_FUSE = 'fuse-native';
    try {
      m = await MountedPool.start(p.pool, p.mnt);
    } finally {
      delete process.env.DYNAMICFS_FUSE;
    }
  });
  after(async () => {
    await m?.stop();
    cleanup(p.root);
  });

  test('the binding serves the mount, and the daemon says so', async () => {
    await eventually('the mounted line', () => (/served through fuse-native/.test(m.log()) ? true : undefined), 10_000);
  });

  test('data, rename, utimens (mtime read back from the binding) and mknod', () => {
    const data = patternBytes(3, (2 << 20) + 777);
    fs.writeFileSync(path.join(p.mnt, 'a'), data);
    fs.renameSync(path.join(p.mnt, 'a'), path.join(p.mnt, 'b'));
    assert.ok(fs.readFileSync(path.join(p.mnt, 'b')).equals(data));
    const atime = new Date('2020-01-02T03:04:05.250Z');
    const mtime = new Date('2021-06-07T08:09:10.500Z');
    fs.utimesSync(path.join(p.mnt, 'b'), atime, mtime);
    assert.equal(fs.statSync(path.join(p.mnt, 'b')).mtime.toISOString(), mtime.toISOString());
    assert.equal(fs.statSync(path.join(p.mnt, 'b')).atime.toISOString(), atime.toISOString());
    const r = spawnSync('mkfifo', [path.join(p.mnt, 'fifo')]);
    assert.equal(r.status, 0, r.stderr?.toString());
    assert.ok(fs.statSync(path.join(p.mnt, 'fifo')).isFIFO());
  });

  test('O_TMPFILE is refused with EOPNOTSUPP on this path only (libfuse 2 has no tmpfile operation)', () => {
    const r = spawnSync(
      'python3',
      [
        '-c',
        'import os, sys\ntry:\n    os.open(sys.argv[1], os.O_TMPFILE | os.O_RDWR, 0o600); print("opened")\nexcept OSError as e: print(e.errno)',
        p.mnt,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.stdout.trim(), '95', r.stderr); // EOPNOTSUPP; test/posix/conformance.test.ts shows /dev/fuse serving it
  });
});
