import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isMounted } from '../../engine/fuse/mount.js';
import { cleanup, cli, cliJson, eventually, makePool, MountedPool, patternBytes, tempDir, type TestPool } from '../helpers/env.js';

function errno(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
  return 'OK';
}

function xattr(op: 'set' | 'get' | 'list' | 'remove', file: string, name = '', value = ''): { ok: boolean; out: string } {
  const py = {
    set: 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode())',
    get: 'import os,sys; print(os.getxattr(sys.argv[1], sys.argv[2]).decode())',
    list: 'import os,sys; print(",".join(sorted(os.listxattr(sys.argv[1]))))',
    remove: 'import os,sys; os.removexattr(sys.argv[1], sys.argv[2])',
  }[op];
  const r = spawnSync('python3', ['-c', py, file, name, value], { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.status === 0 ? r.stdout.trim() : (r.stderr.trim().split('\n').pop() ?? '') };
}

describe('FUSE operations on a mounted pool', () => {
  let p: TestPool;
  let m: MountedPool;
  let mnt: string;
  before(async () => {
    p = await makePool({ redundancy: 'replication:2', disks: 4, capacities: [64 << 20, 64 << 20, 64 << 20, 64 << 20] });
    m = await MountedPool.start(p.pool, p.mnt);
    mnt = p.mnt;
  });
  after(async () => {
    await m?.stop();
    cleanup(p.root);
  });

  test('as root the daemon serves /dev/fuse itself, and says so', async () => {
    // The line comes once the daemon is ready, a moment after the mount appears.
    await eventually('the mounted line', () => (/served through \/dev\/fuse directly/.test(m.log()) ? true : undefined), 10_000);
  });

  test('the mount is recognisable: type fuse.dynamicfs, source dynamicfs:<pool>', () => {
    const line = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[4] === mnt);
    assert.ok(line, 'mount not found in mountinfo');
    assert.match(line, / - fuse\.dynamicfs dynamicfs:pool /);
  });

  test('mkdir, readdir, getattr, rmdir and their errors', () => {
    fs.mkdirSync(path.join(mnt, 'd1/d2'), { recursive: true });
    assert.ok(fs.statSync(path.join(mnt, 'd1')).isDirectory());
    assert.equal(fs.statSync(path.join(mnt, 'd1')).nlink, 3);
    assert.deepEqual(fs.readdirSync(path.join(mnt, 'd1')), ['d2']);
    assert.equal(
      errno(() => fs.mkdirSync(path.join(mnt, 'd1'))),
      'EEXIST',
    );
    assert.equal(
      errno(() => fs.rmdirSync(path.join(mnt, 'd1'))),
      'ENOTEMPTY',
    );
    assert.equal(
      errno(() => fs.statSync(path.join(mnt, 'nope'))),
      'ENOENT',
    );
    assert.equal(
      errno(() => fs.readdirSync(path.join(mnt, 'nope'))),
      'ENOENT',
    );
    fs.writeFileSync(path.join(mnt, 'plain'), 'x');
    assert.equal(
      errno(() => fs.mkdirSync(path.join(mnt, 'plain/sub'))),
      'ENOTDIR',
    );
    assert.equal(
      errno(() => fs.statSync(path.join(mnt, 'plain/sub'))),
      'ENOTDIR',
    );
    assert.equal(
      errno(() => fs.rmdirSync(path.join(mnt, 'plain'))),
      'ENOTDIR',
    );
    assert.equal(
      errno(() => fs.unlinkSync(path.join(mnt, 'd1'))),
      'EISDIR',
    );
    assert.equal(
      errno(() => fs.openSync(path.join(mnt, 'd1'), 'w')),
      'EISDIR',
    );
    assert.equal(
      errno(() => fs.writeFileSync(path.join(mnt, 'n'.repeat(256)), 'x')),
      'ENAMETOOLONG',
    );
    fs.writeFileSync(path.join(mnt, 'n'.repeat(255)), 'x');
    fs.rmdirSync(path.join(mnt, 'd1/d2'));
    fs.rmdirSync(path.join(mnt, 'd1'));
    assert.equal(
      errno(() => fs.statSync(path.join(mnt, 'd1'))),
      'ENOENT',
    );
  });

  test('create, write at offsets, read, fsync, close; overwrite and append', () => {
    const f = path.join(mnt, 'data.bin');
    const fd = fs.openSync(f, 'w+');
    const a = patternBytes(11, 300_000);
    fs.writeSync(fd, a, 0, a.length, 0);
    const b = patternBytes(12, 50_000);
    fs.writeSync(fd, b, 0, b.length, 120_000); // overwrite inside
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const expected = Buffer.from(a);
    b.copy(expected, 120_000);
    assert.ok(fs.readFileSync(f).equals(expected));
    fs.appendFileSync(f, 'tail');
    assert.equal(fs.statSync(f).size, 300_004);
    assert.equal(fs.readFileSync(f).subarray(300_000).toString(), 'tail');
    const fd2 = fs.openSync(f, 'a');
    fs.writeSync(fd2, 'more', 0); // O_APPEND ignores the position
    fs.closeSync(fd2);
    assert.equal(fs.readFileSync(f).subarray(300_004).toString(), 'more');
  });

  test('sparse files, truncate and ftruncate: holes read as zeros', () => {
    const f = path.join(mnt, 'sparse');
    const fd = fs.openSync(f, 'w+');
    fs.writeSync(fd, Buffer.from('end'), 0, 3, 5_000_000);
    assert.equal(fs.fstatSync(fd).size, 5_000_003);
    const hole = Buffer.alloc(100_000, 1);
    fs.readSync(fd, hole, 0, hole.length, 2_000_000);
    assert.ok(hole.equals(Buffer.alloc(100_000)));
    fs.ftruncateSync(fd, 10);
    fs.closeSync(fd);
    assert.equal(fs.statSync(f).size, 10);
    fs.writeFileSync(f, 'abcdefghij');
    fs.truncateSync(f, 4);
    fs.truncateSync(f, 8);
    assert.deepEqual([...fs.readFileSync(f)], [97, 98, 99, 100, 0, 0, 0, 0]);
  });

  test('rename: replaces files and empty directories atomically, refuses the rest', () => {
    const r = (x: string) => path.join(mnt, x);
    fs.writeFileSync(r('old'), 'old-content');
    fs.writeFileSync(r('new'), 'new-content');
    fs.renameSync(r('new'), r('old'));
    assert.equal(fs.readFileSync(r('old'), 'utf8'), 'new-content');
    assert.equal(
      errno(() => fs.statSync(r('new'))),
      'ENOENT',
    );
    fs.mkdirSync(r('da'));
    fs.mkdirSync(r('db'));
    fs.writeFileSync(r('da/inside'), 'i');
    fs.renameSync(r('da'), r('db')); // over an empty directory
    assert.equal(fs.readFileSync(r('db/inside'), 'utf8'), 'i');
    fs.mkdirSync(r('dc'));
    fs.writeFileSync(r('dc/x'), 'x');
    fs.mkdirSync(r('dd'));
    assert.equal(
      errno(() => fs.renameSync(r('dd'), r('dc'))),
      'ENOTEMPTY',
    );
    assert.equal(
      errno(() => fs.renameSync(r('old'), r('dd'))),
      'EISDIR',
    );
    assert.equal(
      errno(() => fs.renameSync(r('dd'), r('old'))),
      'ENOTDIR',
    );
    assert.equal(
      errno(() => fs.renameSync(r('dc'), r('dc/sub'))),
      'EINVAL',
    );
    assert.equal(
      errno(() => fs.renameSync(r('missing'), r('x'))),
      'ENOENT',
    );
  });

  test('hard links, symlinks and readlink', () => {
    const r = (x: string) => path.join(mnt, x);
    fs.writeFileSync(r('orig'), 'shared');
    fs.linkSync(r('orig'), r('alias'));
    assert.equal(fs.statSync(r('orig')).nlink, 2);
    assert.equal(fs.statSync(r('orig')).ino, fs.statSync(r('alias')).ino);
    fs.unlinkSync(r('orig'));
    assert.equal(fs.readFileSync(r('alias'), 'utf8'), 'shared');
    assert.equal(
      errno(() => fs.linkSync(r('alias'), r('alias'))),
      'EEXIST',
    );
    fs.symlinkSync('alias', r('sym'));
    assert.equal(fs.readlinkSync(r('sym')), 'alias');
    assert.ok(fs.lstatSync(r('sym')).isSymbolicLink());
    assert.equal(fs.readFileSync(r('sym'), 'utf8'), 'shared');
    assert.equal(
      errno(() => fs.readlinkSync(r('alias'))),
      'EINVAL',
    );
  });

  test('chmod, chown, utimens', () => {
    const f = path.join(mnt, 'meta');
    fs.writeFileSync(f, 'm');
    fs.chmodSync(f, 0o600);
    assert.equal(fs.statSync(f).mode & 0o7777, 0o600);
    fs.chownSync(f, 1234, 5678);
    assert.equal(fs.statSync(f).uid, 1234);
    assert.equal(fs.statSync(f).gid, 5678);
    const t = new Date('2021-06-07T08:09:10Z');
    fs.utimesSync(f, t, t);
    assert.equal(fs.statSync(f).mtime.toISOString(), t.toISOString());
    assert.equal(fs.statSync(f).atime.toISOString(), t.toISOString());
  });

  test('utimens with different atime and mtime sets each one (to the millisecond)', () => {
    // fuse-native 2.2.6 passes the access time twice; engine/fuse/utimens-mtime.ts reads the
    // modification time back from the binding's per-thread struct.
    const f = path.join(mnt, 'times');
    fs.writeFileSync(f, 't');
    const atime = new Date('2020-01-02T03:04:05.250Z');
    const mtime = new Date('2021-06-07T08:09:10.500Z');
    fs.utimesSync(f, atime, mtime);
    assert.equal(fs.statSync(f).atime.toISOString(), atime.toISOString());
    assert.equal(fs.statSync(f).mtime.toISOString(), mtime.toISOString());
  });

  test('times set on an open file before its data is flushed survive the flush (cp -p, rsync -t)', () => {
    const f = path.join(mnt, 'copied');
    const atime = new Date('2001-01-01T00:00:00.000Z');
    const mtime = new Date('2002-02-02T02:02:02.000Z');
    const fd = fs.openSync(f, 'w');
    try {
      // Three full extents and a partial one: some commits happen after futimes, at close.
      fs.writeSync(fd, patternBytes(7, (3 << 20) + 4321));
      fs.futimesSync(fd, atime, mtime);
    } finally {
      fs.closeSync(fd);
    }
    const st = fs.statSync(f);
    assert.equal(st.size, (3 << 20) + 4321);
    assert.equal(st.mtime.toISOString(), mtime.toISOString());
    assert.equal(st.atime.toISOString(), atime.toISOString());
  });

  test('utimensat that sets only one time leaves the other (touch -m, touch -a, tar x)', () => {
    // libfuse 2 drops these calls (fuse-native does not set flag_utime_omit_ok); the daemon runs as
    // root here, so it serves /dev/fuse itself and sees them (fuse/kernel/).
    const f = path.join(mnt, 'omit');
    fs.writeFileSync(f, 'o');
    const both = new Date('2015-05-05T05:05:05.000Z');
    fs.utimesSync(f, both, both);
    const touch = (flag: string, when: string) => spawnSync('touch', [flag, '-d', when, f], { encoding: 'utf8' });
    assert.equal(touch('-m', '2019-09-09T09:09:09Z').status, 0);
    assert.equal(fs.statSync(f).mtime.toISOString(), '2019-09-09T09:09:09.000Z');
    assert.equal(fs.statSync(f).atime.toISOString(), both.toISOString());
    assert.equal(touch('-a', '2018-08-08T08:08:08Z').status, 0);
    assert.equal(fs.statSync(f).atime.toISOString(), '2018-08-08T08:08:08.000Z');
    assert.equal(fs.statSync(f).mtime.toISOString(), '2019-09-09T09:09:09.000Z');
  });

  test('new entries belong to the caller; a set-group-ID directory hands on its group', () => {
    fs.chmodSync(p.root, 0o755); // a temporary directory is 0700: let nobody through to the mount
    const shared = path.join(mnt, 'shared');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o1777);
    // As nobody: create, close, append again, and make a directory and a file in it.
    const script = 'cd "$1" && echo one > f && echo two >> f && mkdir d && echo in > d/inner && cat f d/inner';
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', script, 'sh', shared], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'one\ntwo\nin\n');
    for (const name of ['f', 'd', 'd/inner']) {
      const st = fs.statSync(path.join(shared, name));
      assert.deepEqual([st.uid, st.gid], [65534, 65534], name);
    }
    const sg = path.join(mnt, 'setgid');
    fs.mkdirSync(sg);
    fs.chownSync(sg, 0, 4321);
    fs.chmodSync(sg, 0o2775);
    fs.writeFileSync(path.join(sg, 'x'), 'x');
    fs.mkdirSync(path.join(sg, 'sub'));
    assert.equal(fs.statSync(path.join(sg, 'x')).gid, 4321);
    assert.equal(fs.statSync(path.join(sg, 'sub')).gid, 4321);
    assert.equal(fs.statSync(path.join(sg, 'sub')).mode & 0o2000, 0o2000);
  });

  test('statfs reports usable capacity after redundancy overhead', () => {
    const s = fs.statfsSync(mnt);
    const total = s.blocks * s.bsize;
    // 4 disks capped at 64 MiB, replication:2 -> 128 MiB usable.
    assert.ok(Math.abs(total - 128 * 2 ** 20) < 4096 * 4, `total ${total}`);
    assert.ok(s.bavail * s.bsize <= total);
  });

  test('extended attributes: set, get, list, remove, ENODATA', () => {
    const f = path.join(mnt, 'xa');
    fs.writeFileSync(f, 'x');
    assert.ok(xattr('set', f, 'user.color', 'blue').ok);
    assert.equal(xattr('get', f, 'user.color').out, 'blue');
    assert.equal(xattr('list', f).out, 'user.color');
    assert.ok(xattr('remove', f, 'user.color').ok);
    assert.match(xattr('get', f, 'user.color').out, /No data available|ENODATA/);
    assert.match(xattr('remove', f, 'user.color').out, /No data available|ENODATA/);
  });

  test('mknod: FIFOs and Unix sockets work, device nodes are stored (the mount is nodev)', () => {
    const py = [
      'import os, socket, stat, sys, threading',
      'os.chdir(sys.argv[1])',
      'os.mkfifo("fifo", 0o640)',
      'threading.Thread(target=lambda: open("fifo", "w").write("through the fifo")).start()',
      'print(open("fifo").read())',
      's = socket.socket(socket.AF_UNIX); s.bind("sock"); s.listen(1)',
      'c = socket.socket(socket.AF_UNIX); c.connect("sock"); a, _ = s.accept(); c.sendall(b"through the socket")',
      'print(a.recv(64).decode())',
      'print(stat.S_ISFIFO(os.stat("fifo").st_mode), oct(os.stat("fifo").st_mode & 0o7777), stat.S_ISSOCK(os.stat("sock").st_mode))',
      'try: os.mknod("dev", 0o600 | stat.S_IFCHR, os.makedev(1, 3)); print("device made")',
      'except PermissionError as e: print("EPERM")',
      'print(stat.S_ISCHR(os.stat("dev").st_mode), os.major(os.stat("dev").st_rdev), os.minor(os.stat("dev").st_rdev))',
      'print(sorted(n for n in os.listdir(".") if n in ("fifo", "sock", "dev")))',
    ].join('\n');
    const dir = path.join(mnt, 'special');
    fs.mkdirSync(dir);
    const r = spawnSync('python3', ['-c', py, dir], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      'through the fifo',
      'through the socket',
      'True 0o640 True',
      'device made',
      'True 1 3',
      "['dev', 'fifo', 'sock']",
    ]);
    fs.unlinkSync(path.join(dir, 'dev'));
    fs.unlinkSync(path.join(dir, 'fifo'));
    fs.unlinkSync(path.join(dir, 'sock'));
    fs.rmdirSync(dir);
    assert.equal(cli('fsck', p.pool).code, 0);
  });

  test('cp -a and cp -p keep modes; POSIX ACLs are refused with EOPNOTSUPP', () => {
    const src = tempDir('dfs-acl-src-');
    try {
      fs.mkdirSync(path.join(src, 'tree/sub'), { recursive: true });
      fs.writeFileSync(path.join(src, 'tree/sub/f'), 'f');
      fs.chmodSync(path.join(src, 'tree/sub/f'), 0o640);
      fs.chmodSync(path.join(src, 'tree/sub'), 0o750);
      // cp sets the mode by writing a minimal ACL; only when that is refused does it chmod.
      const a = spawnSync('cp', ['-a', path.join(src, 'tree'), path.join(mnt, 'acl-tree')], { encoding: 'utf8' });
      assert.equal(a.status, 0, a.stderr);
      assert.equal(fs.statSync(path.join(mnt, 'acl-tree/sub')).mode & 0o7777, 0o750);
      assert.equal(fs.statSync(path.join(mnt, 'acl-tree/sub/f')).mode & 0o7777, 0o640);
      const p2 = spawnSync('cp', ['-p', path.join(src, 'tree/sub/f'), path.join(mnt, 'acl-p')], { encoding: 'utf8' });
      assert.equal(p2.status, 0, p2.stderr);
      assert.equal(fs.statSync(path.join(mnt, 'acl-p')).mode & 0o7777, 0o640);
    } finally {
      cleanup(src);
    }
    // A valid minimal ACL (user::rw- group::r-- other::---), so the kernel passes it on to us.
    const py = [
      'import os, sys, errno',
      'acl = bytes([2,0,0,0, 1,0,6,0,255,255,255,255, 4,0,4,0,255,255,255,255, 32,0,0,0,255,255,255,255])',
      'for call in (lambda: os.setxattr(sys.argv[1], "system.posix_acl_access", acl), lambda: os.getxattr(sys.argv[1], "system.posix_acl_access")):',
      '    try: call(); print("accepted")',
      '    except OSError as e: print("EOPNOTSUPP" if e.errno == errno.EOPNOTSUPP else errno.errorcode[e.errno])',
      'print(",".join(os.listxattr(sys.argv[1])) or "-")',
    ].join('\n');
    const r = spawnSync('python3', ['-c', py, path.join(mnt, 'acl-p')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['EOPNOTSUPP', 'EOPNOTSUPP', '-']);
    assert.equal(fs.statSync(path.join(mnt, 'acl-p')).mode & 0o7777, 0o640);
  });

  test('a top-level directory carries its own policy (xattr or CLI); bad policies are refused', () => {
    const d = path.join(mnt, 'triple');
    fs.mkdirSync(d);
    assert.ok(xattr('set', d, 'user.dynamicfs.policy', 'erasure:2+1').ok);
    fs.writeFileSync(path.join(d, 'f'), patternBytes(3, 100_000));
    assert.match(xattr('set', d, 'user.dynamicfs.policy', 'raid5').out, /Invalid argument|EINVAL/);
    const st = cliJson<{ extents: { total: number } }>('status', p.pool);
    assert.ok(st.extents.total > 0);
    const bad = cli('set-policy', p.pool, '/triple', 'replication:5');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /replication:5 needs 5 healthy disks.*has 4/);
  });

  test('reads of data that cannot be reconstructed fail with EIO, never wrong bytes', async () => {
    const f = path.join(mnt, 'fragile');
    fs.writeFileSync(f, patternBytes(21, 200_000));
    // Remove both replicas of every extent behind the daemon's back.
    const { execFileSync } = await import('node:child_process');
    const py = `import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); print('\\n'.join(f"{r[0]}.{r[1]}" for r in c.execute("select f.eid, f.slot from fragments f join extents e on e.eid=f.eid join dirents d on d.ino=e.ino where d.name='fragile'")))`;
    const names = execFileSync('python3', ['-c', py, path.join(p.pool, 'metadata.db')], { encoding: 'utf8' })
      .trim()
      .split('\n');
    assert.ok(names.length >= 4);
    for (const disk of p.disks) {
      for (const name of names) {
        const eid = Number(name.split('.')[0]);
        fs.rmSync(path.join(disk, 'dynamicfs/fragments', (eid & 0xff).toString(16).padStart(2, '0'), name), { force: true });
      }
    }
    assert.equal(
      errno(() => fs.readFileSync(f)),
      'EIO',
    );
  });

  test('ENOSPC when the healthy disks cannot satisfy the policy: no silent downgrade', () => {
    const d = path.join(mnt, 'wide');
    fs.mkdirSync(d);
    assert.equal(cli('set-policy', p.pool, '/wide', 'replication:4').code, 0);
    fs.writeFileSync(path.join(d, 'ok'), 'fits on 4 disks');
    assert.equal(cli('set-disk-health', p.pool, p.disks[0], 'failed', '--reason', 'test').code, 0);
    assert.equal(
      errno(() => fs.writeFileSync(path.join(d, 'no'), 'needs 4 healthy disks')),
      'ENOSPC',
    );
    assert.equal(fs.readFileSync(path.join(d, 'ok'), 'utf8'), 'fits on 4 disks');
    assert.match(cli('set-disk-health', p.pool, p.disks[0], 'healthy').stderr, /passing probe/);
    assert.equal(cli('probe-disks', p.pool).code, 0);
    assert.equal(cli('set-disk-health', p.pool, p.disks[0], 'healthy').code, 0);
  });

  test('ENOSPC when the disks are full; the pool stays consistent', () => {
    const f = path.join(mnt, 'huge');
    assert.equal(
      errno(() => fs.writeFileSync(f, Buffer.alloc(160 << 20, 1))),
      'ENOSPC',
    );
    fs.rmSync(f, { force: true });
    fs.writeFileSync(path.join(mnt, 'after-full'), 'still works');
    assert.equal(fs.readFileSync(path.join(mnt, 'after-full'), 'utf8'), 'still works');
  });

  test('CLI works while mounted (through the control socket); a second mount is refused', () => {
    const st = cliJson<{ mounted: { mountpoint: string } | null; disks: unknown[] }>('status', p.pool);
    assert.equal(st.mounted?.mountpoint, mnt);
    assert.equal(st.disks.length, 4);
    const second = cli('mount', p.pool, path.join(p.root, 'other'));
    assert.equal(second.code, 1);
    assert.match(second.stderr, /in use by process \d+ \(mounted at .*mnt\)/);
  });
});

test('SIGTERM flushes and unmounts cleanly; data is there on the next mount', async () => {
  const p = await makePool({ redundancy: 'erasure:2+1', disks: 3 });
  try {
    let m = await MountedPool.start(p.pool, p.mnt);
    const data = patternBytes(99, 1_000_000);
    fs.writeFileSync(path.join(p.mnt, 'kept'), data);
    assert.equal(await m.stop(), 0);
    assert.equal(await isMounted(p.mnt), false);
    m = await MountedPool.start(p.pool, p.mnt);
    assert.ok(fs.readFileSync(path.join(p.mnt, 'kept')).equals(data));
    assert.equal(await m.stop(), 0);
    assert.equal(cli('fsck', p.pool).code, 0);
  } finally {
    cleanup(p.root);
  }
});
