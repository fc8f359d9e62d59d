import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FileSystem } from '../../engine/fs/filesystem.js';
import { Pool } from '../../engine/pool/pool.js';
import { volumesOf } from '../../engine/volumes/volumes.js';
import { cleanup, cliJson, makePool, MountedPool } from '../helpers/env.js';
import { asNobody, modeOf, openPathTo, SYSTEM_PYTHON } from '../helpers/users.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const POLICY = 'user.dynamicfs.policy';
/** Node names no code for it: 'Unknown system error -122'. */
const EDQUOT = 122;

interface VolumeView {
  name: string;
  policy: string;
  capacity: number;
  inodeLimit: number;
  usage: { bytes: number; inodes: number };
}
const volume = (pool: string, name: string) =>
  cliJson<{ volumes: VolumeView[] }>('volume', 'list', pool).volumes.find((v) => v.name === name) as VolumeView;

/** Python as root (or as nobody with `nobody`): sets an xattr, prints OK or the errno name. */
function setxattr(file: string, name: string, value: string, nobody = false): string {
  const py = [
    SYSTEM_PYTHON,
    '-c',
    'import os,sys,errno\ntry:\n os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode()); print("OK")\nexcept OSError as e: print(errno.errorcode[e.errno])',
    file,
    name,
    value,
  ];
  return (nobody ? asNobody(py).out : spawnSync(py[0], py.slice(1), { encoding: 'utf8' }).stdout).trim();
}

test("a volume's policy is the volume's: no process inside it changes it; a plain directory's only its owner or root", async () => {
  const p = await makePool({ disks: 3, redundancy: 'replication:2' });
  openPathTo(p.root);
  const m = await MountedPool.start(p.pool, p.mnt);
  try {
    cliJson('volume', 'create', p.pool, 'data', '--capacity', '4MiB');
    const root = path.join(p.mnt, 'data');
    // The volume's root is writable by every uid of the pod; none of them, root in the pod included, changes the policy.
    assert.equal(modeOf(root), 0o777);
    assert.equal(setxattr(root, POLICY, 'replication:1', true), 'EPERM', 'nobody lowered the volume policy');
    assert.equal(setxattr(root, POLICY, 'replication:3', false), 'EPERM', 'root inside the mount raised the volume policy');
    assert.equal(spawnSync('python3', ['-c', 'import os,sys; os.removexattr(sys.argv[1], sys.argv[2])', root, POLICY]).status, 1);
    assert.equal(volume(p.pool, 'data').policy, 'replication:2');
    // The administrator changes it with the CLI: the volume's row and its directory agree.
    cliJson('set-policy', p.pool, '/data', 'replication:3');
    assert.equal(volume(p.pool, 'data').policy, 'replication:3');

    // A plain top-level directory open to all: only its owner (root) may set its policy.
    fs.mkdirSync(path.join(p.mnt, 'shared'), { mode: 0o777 });
    fs.chmodSync(path.join(p.mnt, 'shared'), 0o777);
    assert.equal(setxattr(path.join(p.mnt, 'shared'), POLICY, 'replication:1', true), 'EPERM');
    assert.equal(setxattr(path.join(p.mnt, 'shared'), POLICY, 'replication:1', false), 'OK');
  } finally {
    await m.stop();
    cleanup(p.root);
  }
});

test('extended attributes and inodes count against a volume: EDQUOT at its capacity and inode limit, and df shows both', async () => {
  const p = await makePool({ disks: 2, redundancy: 'replication:2' });
  const m = await MountedPool.start(p.pool, p.mnt);
  try {
    cliJson('volume', 'create', p.pool, 'small', '--capacity', '1MiB', '--inodes', '40');
    const root = path.join(p.mnt, 'small');
    fs.writeFileSync(path.join(root, 'f'), 'x');
    // 200 attributes of 64 KiB would be 12.5 MiB of metadata on the node's disk: the quota stops them.
    const r = spawnSync(
      'python3',
      [
        '-c',
        [
          'import os,sys,errno',
          'n=0',
          'try:',
          ' for i in range(200):',
          '  os.setxattr(sys.argv[1], "user.a%d" % i, b"v" * 65536); n += 1',
          'except OSError as e: print(n, errno.errorcode[e.errno])',
          'else: print(n, "none")',
        ].join('\n'),
        path.join(root, 'f'),
      ],
      { encoding: 'utf8' },
    );
    const [stored, error] = r.stdout.trim().split(' ');
    assert.equal(error, 'EDQUOT', `200 xattrs of 64 KiB on a 1 MiB volume: ${r.stdout}${r.stderr}`);
    assert.ok(Number(stored) >= 14 && Number(stored) <= 15, `${stored} attributes of 64 KiB fit in 1 MiB`);
    const used = volume(p.pool, 'small').usage.bytes;
    assert.ok(used >= Number(stored) * 64 * KiB && used <= MiB, `usage ${used} does not count the attributes`);
    // Removing them gives the room back.
    spawnSync('python3', ['-c', 'import os,sys\nfor n in os.listxattr(sys.argv[1]): os.removexattr(sys.argv[1], n)', path.join(root, 'f')]);
    assert.ok(volume(p.pool, 'small').usage.bytes < 64 * KiB);

    // Inodes: the root and f are two of 40.
    let made = 0;
    let last = '';
    for (let i = 0; i < 60; i++) {
      try {
        fs.writeFileSync(path.join(root, `n${i}`), '');
        made++;
      } catch (err) {
        last = (err as NodeJS.ErrnoException).errno === -EDQUOT ? 'EDQUOT' : String(err);
        break;
      }
    }
    assert.equal(last, 'EDQUOT');
    assert.equal(made, 38);
    for (const make of [() => fs.mkdirSync(path.join(root, 'd')), () => fs.symlinkSync('f', path.join(root, 'l'))]) {
      assert.throws(make, (e: NodeJS.ErrnoException) => e.errno === -EDQUOT);
    }
    const df = spawnSync('df', ['--output=itotal,iused,size', '-B1', root], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n')[1]
      .trim()
      .split(/\s+/)
      .map(Number);
    assert.deepEqual(df, [40, 40, MiB], `df inside the volume: ${df}`);
    // Hard links are names the metadata keeps: they count too.
    assert.throws(
      () => fs.linkSync(path.join(root, 'f'), path.join(root, 'f-link')),
      (e: NodeJS.ErrnoException) => e.errno === -EDQUOT,
    );
    fs.unlinkSync(path.join(root, 'n0'));
    fs.linkSync(path.join(root, 'f'), path.join(root, 'f-link'));
    assert.throws(
      () => fs.linkSync(path.join(root, 'f'), path.join(root, 'f-link2')),
      (e: NodeJS.ErrnoException) => e.errno === -EDQUOT,
    );
    fs.unlinkSync(path.join(root, 'n1'));
    fs.writeFileSync(path.join(root, 'again'), '');
    assert.equal(volume(p.pool, 'small').inodeLimit, 40);
  } finally {
    await m.stop();
    cleanup(p.root);
  }
});

test('a volume made before inode limits existed is not left past its new limit', async () => {
  const p = await makePool({ disks: 2 });
  try {
    let pool = await Pool.open(p.pool);
    let fsys = new FileSystem(pool);
    volumesOf(pool, fsys).create({ name: 'old', capacity: MiB });
    for (let i = 0; i < 2500; i++) await fsys.release(fsys.create(`/old/f${i}`, 0o100644));
    // As an older version left it: no limit recorded, and the pool never migrated.
    pool.store.volumes.clearInodeLimits();
    pool.store.setMeta('inode_limits', '0');
    await fsys.close();
    await pool.close();
    pool = await Pool.open(p.pool);
    fsys = new FileSystem(pool);
    try {
      // 2501 inodes held, more than half of the default 4096: twice what it holds.
      assert.equal(fsys.quotas.get('old')?.inodeLimit, 5002);
      await fsys.release(fsys.create('/old/one-more', 0o100644));
    } finally {
      await fsys.close();
      await pool.close();
    }
  } finally {
    cleanup(p.root);
  }
});

test('a file unlinked while open still counts against its volume; one volume cannot hold every open file', async () => {
  const p = await makePool({ disks: 2 });
  const cfg = path.join(p.root, 'limits.yaml');
  fs.writeFileSync(cfg, 'security:\n  max_open_files_per_volume: 5\n');
  const m = await MountedPool.start(p.pool, p.mnt, ['--config', cfg]);
  try {
    cliJson('volume', 'create', p.pool, 'q', '--capacity', '1MiB');
    const root = path.join(p.mnt, 'q');
    // 600 KiB in a file that loses its name while open, then 600 KiB more in another: past 1 MiB.
    const r = spawnSync(
      'python3',
      [
        '-c',
        [
          'import os,sys,errno',
          'd=sys.argv[1]',
          'a=os.open(d+"/a", os.O_CREAT|os.O_WRONLY); os.write(a, b"x"*614400); os.fsync(a); os.unlink(d+"/a")',
          'b=os.open(d+"/b", os.O_CREAT|os.O_WRONLY)',
          'try:\n os.write(b, b"y"*614400); os.fsync(b); print("accepted")\nexcept OSError as e: print(errno.errorcode[e.errno])',
          'os.close(a); os.ftruncate(b, 0)',
          'os.write(b, b"y"*614400); os.fsync(b); os.close(b); print("after close: accepted")',
        ].join('\n'),
        root,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.stdout.trim(), 'EDQUOT\nafter close: accepted', `${r.stdout}${r.stderr}`);

    // Five files of the volume open at once, no more; files elsewhere in the pool still open.
    fs.mkdirSync(path.join(p.mnt, 'other'));
    const o = spawnSync(
      'python3',
      [
        '-c',
        [
          'import os,sys,errno',
          'fds=[]',
          'try:\n for i in range(8): fds.append(os.open(sys.argv[1]+"/f%d" % i, os.O_CREAT|os.O_RDWR))\nexcept OSError as e: print(len(fds), errno.errorcode[e.errno])',
          'x=os.open(sys.argv[2]+"/elsewhere", os.O_CREAT|os.O_RDWR); print("elsewhere ok")',
        ].join('\n'),
        root,
        path.join(p.mnt, 'other'),
      ],
      { encoding: 'utf8' },
    );
    assert.equal(o.stdout.trim(), '5 EMFILE\nelsewhere ok', `${o.stdout}${o.stderr}`);
  } finally {
    await m.stop();
    cleanup(p.root);
  }
});
