/**
 * POSIX semantics through the real /dev/fuse mount (issue 18): what outlives its name, hard links,
 * names as bytes, device nodes, O_TMPFILE, and unlinked files left by a crash. The system calls are
 * made by python3 (bytes paths, os.mknod, O_TMPFILE, linkat), never by this process in a way that
 * could block the daemon it started.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fragmentPath } from '../../engine/pool/layout.js';
import { Pool } from '../../engine/pool/pool.js';
import { CLI, cleanup, cli, cliJson, eventually, makePool, MountedPool, type TestPool } from '../helpers/env.js';

/** Runs a python3 program with the mount as argv[1]; it prints one JSON value, which is returned. */
function py<T>(mnt: string, program: string, ...args: string[]): T {
  const prelude = [
    'import os, sys, json, stat, errno, ctypes',
    'os.umask(0)',
    'm = sys.argv[1].encode()',
    'def p(*parts): return os.path.join(m, *[x if isinstance(x, bytes) else x.encode() for x in parts])',
    'def err(fn):',
    '    try:',
    '        fn()',
    '        return "OK"',
    '    except OSError as e:',
    '        return errno.errorcode[e.errno]',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000',
    'def linkfd(fd, dst):',
    '    if libc.linkat(fd, b"", AT_FDCWD, dst, AT_EMPTY_PATH) != 0: raise OSError(ctypes.get_errno(), "linkat")',
  ].join('\n');
  const r = spawnSync('python3', ['-c', `${prelude}\n${program}`, mnt, ...args], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `python3 failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** The metadata's view of inode `ino` while the daemon runs (a read-only reader of its WAL database). */
function inodeNow(pool: string, ino: number): { rows: number; nlink: number | null; extents: number } {
  const q = (sql: string): string => {
    const r = spawnSync('sqlite3', ['-readonly', `${pool}/metadata.db`, sql], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const nlink = q(`SELECT nlink FROM inodes WHERE ino = ${ino}`);
  return {
    rows: nlink === '' ? 0 : 1,
    nlink: nlink === '' ? null : Number(nlink),
    extents: Number(q(`SELECT count(*) FROM extents WHERE ino = ${ino}`)),
  };
}

/** The metadata's view of inode `ino` once the daemon has stopped: its row and extent count. */
async function inodeInPool(pool: string, ino: number): Promise<{ exists: boolean; nlink: number | null; extents: number }> {
  const opened = await Pool.open(pool);
  try {
    const row = opened.store.inode(ino);
    return { exists: row !== undefined, nlink: row?.nlink ?? null, extents: opened.store.extentsOf(ino).length };
  } finally {
    await opened.close();
  }
}

describe('POSIX semantics through the /dev/fuse mount', () => {
  let p: TestPool;
  let m: MountedPool;
  before(async () => {
    p = await makePool({ redundancy: 'replication:2', disks: 3 });
    m = await MountedPool.start(p.pool, p.mnt);
  });
  after(async () => {
    await m?.stop();
    cleanup(p.root);
  });

  test('an unlinked open file keeps working: fstat, read, write; its inode and extents go at the last close', async () => {
    const r = py<{ ino: number; nlink: number; size: number; data: string; grown: number; statAfter: string; rowWhileOpen: string }>(
      p.mnt,
      `
import sqlite3
fd = os.open(p('victim'), os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b'x' * 200000)
os.unlink(p('victim'))
st = os.fstat(fd)
os.pwrite(fd, b'tail', 200000)
grown = os.fstat(fd).st_size
data = os.pread(fd, 6, 199998).decode()
statAfter = err(lambda: os.stat(p('victim')))
os.fsync(fd)
db = sqlite3.connect('file:' + sys.argv[2] + '/metadata.db?mode=ro', uri=True)
rowWhileOpen = repr(db.execute('SELECT nlink, size FROM inodes WHERE ino = ?', (st.st_ino,)).fetchall())
db.close()
os.close(fd)
print(json.dumps(dict(ino=st.st_ino, nlink=st.st_nlink, size=st.st_size, data=data, grown=grown, statAfter=statAfter, rowWhileOpen=rowWhileOpen)))
`,
      p.pool,
    );
    assert.deepEqual(
      { nlink: r.nlink, size: r.size, data: r.data, grown: r.grown, statAfter: r.statAfter, rowWhileOpen: r.rowWhileOpen },
      { nlink: 0, size: 200000, data: 'xxtail', grown: 200004, statAfter: 'ENOENT', rowWhileOpen: '[(0, 200004)]' },
    );
    // The kernel forgets the inode after the last close; then the daemon frees it and its extents.
    await eventually('the unlinked inode is freed after its last close', () => {
      const now = inodeNow(p.pool, r.ino);
      return now.rows === 0 && now.extents === 0 ? now : undefined;
    });
  });

  test('rename over an open file: the open file keeps its bytes and identity, the name shows the new file', () => {
    const r = py<{ oldRead: string; oldIno: boolean; oldNlink: number; newRead: string; sameAsSource: boolean }>(
      p.mnt,
      `
open(p('target'), 'wb').write(b'old contents')
open(p('source'), 'wb').write(b'new contents')
src_ino = os.stat(p('source')).st_ino
fd = os.open(p('target'), os.O_RDONLY)
before = os.fstat(fd).st_ino
os.rename(p('source'), p('target'))
st = os.fstat(fd)
print(json.dumps(dict(oldRead=os.pread(fd, 100, 0).decode(), oldIno=st.st_ino == before, oldNlink=st.st_nlink,
  newRead=open(p('target'), 'rb').read().decode(), sameAsSource=os.stat(p('target')).st_ino == src_ino)))
os.close(fd)
`,
    );
    assert.deepEqual(r, { oldRead: 'old contents', oldIno: true, oldNlink: 0, newRead: 'new contents', sameAsSource: true });
  });

  test('hard links across directories share one inode, through renames of their directories and cache drops', () => {
    const r = py<{ sameIno: boolean; nlink: number; viaOther: string; afterMove: string; nlinkAfterUnlink: number; fdNlink: number }>(
      p.mnt,
      `
os.makedirs(p('hl/a')); os.makedirs(p('hl/b/deep'))
open(p('hl/a/f'), 'wb').write(b'one')
os.link(p('hl/a/f'), p('hl/b/deep/g'))
sa, sb = os.stat(p('hl/a/f')), os.stat(p('hl/b/deep/g'))
fd = os.open(p('hl/a/f'), os.O_WRONLY)
os.pwrite(fd, b'two', 0); os.fsync(fd)
viaOther = open(p('hl/b/deep/g'), 'rb').read().decode()
os.rename(p('hl/b'), p('hl/c'))
open('/proc/sys/vm/drop_caches', 'w').write('2')
afterMove = open(p('hl/c/deep/g'), 'rb').read().decode()
os.unlink(p('hl/a/f'))
print(json.dumps(dict(sameIno=sa.st_ino == sb.st_ino, nlink=sb.st_nlink, viaOther=viaOther, afterMove=afterMove,
  nlinkAfterUnlink=os.stat(p('hl/c/deep/g')).st_nlink, fdNlink=os.fstat(fd).st_nlink)))
os.close(fd)
`,
    );
    assert.deepEqual(r, { sameIno: true, nlink: 2, viaOther: 'two', afterMove: 'two', nlinkAfterUnlink: 1, fdNlink: 1 });
  });

  test('names are bytes: names that differ only in non-UTF-8 bytes stay two files, listed and read back exactly', async () => {
    const program = (phase: string): string => `
names = [b'caf\\xe8.txt', b'caf\\xe9.txt', b'\\xff\\xfe', b'line\\nbreak', b'\\xed\\xa0\\x80surrogate', 'ünïcode ✓'.encode(), b'\\xe8' * 255]
if ${phase === 'write' ? 'True' : 'False'}:
    os.mkdir(p('bytes'))
    for i, n in enumerate(names): open(p('bytes', n), 'wb').write(b'%d' % i)
    os.symlink(b'caf\\xe8.txt', p('bytes', b'link\\xe8'))
    os.setxattr(p('bytes', names[0]), b'user.\\xe8', b'e-grave')
    os.setxattr(p('bytes', names[0]), b'user.\\xe9', b'e-acute')
listed = sorted(os.listdir(p('bytes')))
contents = [open(p('bytes', n), 'rb').read().decode() for n in names]
print(json.dumps(dict(listed=[x.hex() for x in listed], contents=contents, target=os.readlink(p('bytes', b'link\\xe8')).hex(),
  tooLong=err(lambda: open(p('bytes', b'\\xe8' * 256), 'wb')),
  xattrs=sorted([os.fsencode(n).hex() + '=' + os.getxattr(p('bytes', names[0]), os.fsencode(n)).decode() for n in os.listxattr(p('bytes', names[0]))]))))
`;
    const expected = {
      listed: [
        'caf\xe8.txt',
        'caf\xe9.txt',
        '\xff\xfe',
        'line\nbreak',
        '\xed\xa0\x80surrogate',
        'ünïcode ✓',
        '\xe8'.repeat(255),
        'link\xe8',
      ]
        .map((s) => (s === 'ünïcode ✓' ? Buffer.from(s) : Buffer.from(s, 'latin1')).toString('hex'))
        .sort(),
      contents: ['0', '1', '2', '3', '4', '5', '6'],
      target: Buffer.from('caf\xe8.txt', 'latin1').toString('hex'),
      tooLong: 'ENAMETOOLONG',
      xattrs: ['757365722ee8=e-grave', '757365722ee9=e-acute'],
    };
    const first = py<typeof expected>(p.mnt, program('write'));
    first.listed.sort();
    assert.deepEqual(first, expected);
    // Kept in the metadata as bytes: the same after the daemon starts again.
    await m.stop();
    m = await MountedPool.start(p.pool, p.mnt);
    const again = py<typeof expected>(p.mnt, program('read'));
    again.listed.sort();
    assert.deepEqual(again, expected);
  });

  test('device nodes keep their type and number; the nodev mount never opens them as devices', async () => {
    const program = (make: boolean): string => `
if ${make ? 'True' : 'False'}:
    os.mkdir(p('dev'))
    os.mknod(p('dev/null'), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(p('dev/loop9'), 0o660 | stat.S_IFBLK, os.makedev(7, 9))
    os.mknod(p('dev/big'), 0o600 | stat.S_IFCHR, os.makedev(4095, 1048575))
    os.mkfifo(p('dev/fifo'), 0o644)
out = {}
for n in ['null', 'loop9', 'big', 'fifo']:
    st = os.lstat(p('dev', n))
    out[n] = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev)]
out['openNull'] = err(lambda: os.close(os.open(p('dev/null'), os.O_RDONLY)))
print(json.dumps(out))
`;
    const expected = {
      null: [0o020000, 0o666, 1, 3],
      loop9: [0o060000, 0o660, 7, 9],
      big: [0o020000, 0o600, 4095, 1048575],
      fifo: [0o010000, 0o644, 0, 0],
      openNull: 'EACCES',
    };
    assert.deepEqual(py(p.mnt, program(true)), expected);
    await m.stop();
    m = await MountedPool.start(p.pool, p.mnt);
    assert.deepEqual(py(p.mnt, program(false)), expected);
  });

  test('times set with utimensat come back to the nanosecond, through writes after them and a restart', async () => {
    // Nanoseconds since the epoch pass 2^53: python prints them as strings, compared as strings.
    const program = (set: boolean): string => `
if ${set ? 'True' : 'False'}:
    os.mkdir(p('times'))
    fd = os.open(p('times/f'), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b'a' * 300000)
    os.utime(fd, ns=(1234567890123456789, 1600000000987654321))
    os.close(fd)
    os.mknod(p('times/dev'), 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    os.utime(p('times/dev'), ns=(42, 1700000000000000007), follow_symlinks=False)
    os.utime(p('times'), ns=(1000000000000000001, 999999999999999999))
print(json.dumps([[str(os.lstat(p(n)).st_atime_ns), str(os.lstat(p(n)).st_mtime_ns)] for n in ['times/f', 'times', 'times/dev']]))
`;
    const expected = [
      ['1234567890123456789', '1600000000987654321'],
      ['1000000000000000001', '999999999999999999'],
      ['42', '1700000000000000007'],
    ];
    assert.deepEqual(py(p.mnt, program(true)), expected);
    await m.stop();
    m = await MountedPool.start(p.pool, p.mnt);
    assert.deepEqual(py(p.mnt, program(false)), expected);
  });

  test('O_TMPFILE: an unnamed file that linkat can name; one never named is reclaimed at close', async () => {
    const r = py<{ nlink: number; listedBefore: string[]; named: string; nlinkAfter: number; mode: number; lostIno: number }>(
      p.mnt,
      `
os.mkdir(p('tmp'))
fd = os.open(p('tmp'), os.O_TMPFILE | os.O_RDWR, 0o640)
os.write(fd, b'made unnamed')
nlink = os.fstat(fd).st_nlink
listedBefore = os.listdir(p('tmp'))
linkfd(fd, p('tmp/named'))
os.close(fd)
st = os.stat(p('tmp/named'))
lost = os.open(p('tmp'), os.O_TMPFILE | os.O_WRONLY, 0o600)
os.write(lost, b'y' * 100000)
lostIno = os.fstat(lost).st_ino
os.close(lost)
print(json.dumps(dict(nlink=nlink, listedBefore=[x.decode() for x in listedBefore], named=open(p('tmp/named'), 'rb').read().decode(),
  nlinkAfter=st.st_nlink, mode=stat.S_IMODE(st.st_mode), lostIno=lostIno)))
`,
    );
    assert.deepEqual({ ...r, lostIno: 0 }, { nlink: 0, listedBefore: [], named: 'made unnamed', nlinkAfter: 1, mode: 0o640, lostIno: 0 });
    await eventually('the never-named O_TMPFILE inode is freed after its close', () => {
      const now = inodeNow(p.pool, r.lostIno);
      return now.rows === 0 && now.extents === 0 ? now : undefined;
    });
  });

  test('files unlinked while open when the daemon is killed are reclaimed at the next open', async () => {
    // The holder keeps the unlinked file open until the daemon dies under it.
    const holder = `
fd = os.open(p('orphan'), os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b'z' * 300000); os.fsync(fd)
os.unlink(p('orphan'))
os.fsync(fd)
print(json.dumps(os.fstat(fd).st_ino), flush=True)
sys.stdin.read()
`;
    const { spawn } = await import('node:child_process');
    const child = spawn(
      'python3',
      ['-c', `import os, sys, json\nm = sys.argv[1].encode()\ndef p(x): return os.path.join(m, x.encode())\n${holder}`, p.mnt],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const ino = await eventually('the holder reports its inode', () => (out.includes('\n') ? Number(out.trim()) : undefined));
    await m.kill({ detach: false });
    child.stdin.end();
    await new Promise((r) => child.once('exit', r));
    await m.detach();
    // The kill left the inode in the metadata with no name; opening the pool reclaims it.
    assert.deepEqual(await inodeInPool(p.pool, ino), { exists: false, nlink: null, extents: 0 });
    m = await MountedPool.start(p.pool, p.mnt);
  });
});

/** What a hostile tenant tried after the rewrite (each case failed on the first inode-based version). */
describe('POSIX semantics inside volumes, against a hostile tenant', () => {
  let p: TestPool;
  let m: MountedPool;
  let cfg: string;
  before(async () => {
    p = await makePool({ redundancy: 'replication:2', disks: 3 });
    cfg = path.join(p.root, 'limits.yaml');
    writeFileSync(cfg, 'security:\n  max_open_files_per_volume: 5\n');
    m = await MountedPool.start(p.pool, p.mnt, ['--config', cfg]);
  });
  after(async () => {
    await m?.stop();
    cleanup(p.root);
  });
  const volume = (name: string, ...args: string[]): void => {
    const r = cli('volume', 'create', p.pool, name, ...args);
    assert.equal(r.code, 0, r.stderr);
  };

  test('a process inside a deleted volume cannot make entries there; nothing is left unreachable', () => {
    volume('gone', '--capacity', '10MiB');
    const r = py<{ made: string; listed: string[] }>(
      p.mnt,
      `
import subprocess
os.chdir(p('gone'))
d = subprocess.run([sys.argv[2], sys.argv[3], 'volume', 'delete', sys.argv[4], 'gone', '--yes'], capture_output=True)
assert d.returncode == 0, d.stderr
print(json.dumps(dict(made=err(lambda: open('newfile', 'wb').write(b'x' * 500000)), listed=os.listdir('.'))))
`,
      process.execPath,
      CLI,
      p.pool,
    );
    assert.deepEqual(r, { made: 'ENOENT', listed: [] });
  });

  test("the volume's root cannot be removed through the mount, only with the volume", () => {
    volume('keep', '--capacity', '1MiB');
    assert.deepEqual(py(p.mnt, `print(json.dumps(err(lambda: os.rmdir(p('keep')))))`), 'EBUSY');
    const list = cliJson<{ volumes: { name: string }[] }>('volume', 'list', p.pool);
    assert.ok(list.volumes.some((v) => v.name === 'keep'));
  });

  test('closing the last handle of an unlinked or O_TMPFILE file gives its bytes and inode back to the volume', () => {
    volume('cap', '--capacity', '1MiB', '--inodes', '10');
    const r = py<{ tmpfiles: string; bytes: string }>(
      p.mnt,
      `
def tmpfiles():
    for i in range(12): os.close(os.open(p('cap'), os.O_TMPFILE | os.O_RDWR, 0o600))
def bytes_back():
    fd = os.open(p('cap/big'), os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b'x' * 900000); os.fsync(fd); os.unlink(p('cap/big')); os.close(fd)
    fd = os.open(p('cap/next'), os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b'y' * 300000); os.fsync(fd); os.close(fd)
print(json.dumps(dict(tmpfiles=err(tmpfiles), bytes=err(bytes_back))))
`,
    );
    assert.deepEqual(r, { tmpfiles: 'OK', bytes: 'OK' });
  });

  test('an O_TMPFILE file can be named at the inode limit; a create refused with EMFILE leaves nothing behind', () => {
    volume('lim', '--capacity', '10MiB', '--inodes', '4');
    const r = py<{ named: string; files: string[]; emfile: string; left: string[]; tmpEmfile: string; unnamedMade: number }>(
      p.mnt,
      `
open(p('lim/a'), 'wb').close(); open(p('lim/b'), 'wb').close()
fd = os.open(p('lim'), os.O_TMPFILE | os.O_RDWR, 0o600)
os.write(fd, b'atomic replace')
named = err(lambda: linkfd(fd, p('lim/c')))
os.close(fd)
files = sorted(x.decode() for x in os.listdir(p('lim')))
for n in ['a', 'b', 'c']: os.unlink(p('lim', n))
held = [os.open(p('lim/h%d' % i), os.O_CREAT | os.O_RDWR, 0o600) for i in range(3)]
fds = held + [os.open(p('lim/h0'), os.O_RDONLY), os.open(p('lim/h1'), os.O_RDONLY)]
import sqlite3
db = sqlite3.connect('file:' + sys.argv[2] + '/metadata.db?mode=ro', uri=True)
unnamed = lambda: db.execute('SELECT count(*) FROM inodes WHERE nlink = 0').fetchone()[0]
before = unnamed()
emfile = err(lambda: os.open(p('lim/extra'), os.O_CREAT | os.O_RDWR, 0o600))
tmpEmfile = err(lambda: os.open(p('lim'), os.O_TMPFILE | os.O_RDWR, 0o600))
left = sorted(x.decode() for x in os.listdir(p('lim')))
unnamedMade = unnamed() - before
for f in fds: os.close(f)
print(json.dumps(dict(named=named, files=files, emfile=emfile, left=left, tmpEmfile=tmpEmfile, unnamedMade=unnamedMade)))
`,
      p.pool,
    );
    assert.deepEqual(r, {
      named: 'OK',
      files: ['a', 'b', 'c'],
      emfile: 'EMFILE',
      left: ['h0', 'h1', 'h2'],
      tmpEmfile: 'EMFILE',
      unnamedMade: 0,
    });
  });

  test('setting or removing an extended attribute moves ctime, as on ext4', () => {
    const r = py<{ set: boolean; removed: boolean }>(
      p.mnt,
      `
import time
open(p('xc'), 'wb').close()
c0 = os.stat(p('xc')).st_ctime_ns
time.sleep(0.01)
os.setxattr(p('xc'), 'user.k', b'v')
c1 = os.stat(p('xc')).st_ctime_ns
time.sleep(0.01)
os.removexattr(p('xc'), 'user.k')
c2 = os.stat(p('xc')).st_ctime_ns
print(json.dumps(dict(set=c1 > c0, removed=c2 > c1)))
`,
    );
    assert.deepEqual(r, { set: true, removed: true });
  });

  test('rewinddir shows the directory as it is now', () => {
    const r = py<{ first: string[]; again: string[] }>(
      p.mnt,
      `
os.mkdir(p('rew')); open(p('rew/one'), 'wb').close()
fd = os.open(p('rew'), os.O_RDONLY)
first = sorted(x for x in os.listdir(fd))
open(p('rew/two'), 'wb').close(); os.unlink(p('rew/one'))
again = sorted(x for x in os.listdir(fd))  # listdir(fd) rewinds the same open directory
os.close(fd)
print(json.dumps(dict(first=first, again=again)))
`,
    );
    assert.deepEqual(r, { first: ['one'], again: ['two'] });
  });

  test('a tree deeper than 4096 levels stays in its volume: quota, statfs, delete, status', () => {
    volume('deep', '--capacity', '1MiB', '--inodes', '10000');
    const r = py<{ write: string; blocks: number; depth: number }>(
      p.mnt,
      `
os.chdir(p('deep'))
for i in range(4200):
    os.mkdir('d'); os.chdir('d')
def big():
    fd = os.open('big', os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        os.write(fd, b'x' * 2000000); os.fsync(fd)
    finally:
        os.close(fd)
st = os.statvfs('.')
print(json.dumps(dict(write=err(big), blocks=st.f_blocks * st.f_frsize, depth=4200)))
`,
    );
    assert.deepEqual(r, { write: 'EDQUOT', blocks: 1 << 20, depth: 4200 });
    assert.equal(cli('status', p.pool).code, 0);
    const del = cli('volume', 'delete', p.pool, 'deep', '--yes');
    assert.equal(del.code, 0, del.stderr);
  });

  test('a hostile file name with lost data is escaped in scrub, status and diagnose output', () => {
    const made = py<{ ino: number }>(
      p.mnt,
      `
fd = os.open(p(b'bad\\nname\\x1b[31m\\xe8'), os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b'q' * 100000); os.fsync(fd); os.close(fd)
print(json.dumps(dict(ino=os.stat(p(b'bad\\nname\\x1b[31m\\xe8')).st_ino)))
`,
    );
    // Every copy of its data damaged on the disks: the file is named in the reports as unrecoverable.
    const rows = spawnSync(
      'sqlite3',
      [
        '-readonly',
        `${p.pool}/metadata.db`,
        `SELECT d.path, f.eid, f.slot FROM extents e JOIN fragments f ON f.eid = e.eid JOIN disks d ON d.id = f.disk WHERE e.ino = ${made.ino}`,
      ],
      { encoding: 'utf8' },
    ).stdout.trim();
    assert.notEqual(rows, '');
    for (const line of rows.split('\n')) {
      const [disk, eid, slot] = line.split('|');
      writeFileSync(fragmentPath(disk, Number(eid), Number(slot)), Buffer.alloc(4096, 0x55));
    }
    for (const command of ['scrub', 'status', 'diagnose']) {
      const out = cli(command, p.pool);
      const text = out.stdout + out.stderr;
      assert.match(text, /bad\\nname\\x1b\[31m\\xe8/, `${command} names the file, escaped:\n${text}`);
      assert.ok(!text.includes('\x1b'), `${command} wrote a raw escape character`);
      assert.ok(!/^name/m.test(text), `${command} let the name break a line`);
    }
  });
});
