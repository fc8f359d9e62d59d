/**
 * Real programs through a real DynamicFS mount (issue 18, "tried also with real programs"): GNU tar and
 * rsync -aHAX against the same operations on ext4 (a loop device), git clone/fsck/commit/gc, and
 * SQLite's integrity after the daemon is killed with SIGKILL under a writer.
 *
 * Trees are compared by a python3 walker that works on bytes: per entry the name bytes, type, mode,
 * owner, size, mtime in nanoseconds, nlink, hard-link group (which names share an inode), rdev, symlink
 * target bytes, sha256 of the content and the user.* extended attributes. Directory sizes are left
 * out (ext4 counts blocks, DynamicFS entries), and so are atime and ctime (the programs do not keep
 * them). Every program runs in a child process: this process never blocks on the mount its daemon
 * serves in a way the daemon would need it for.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { cleanup, makePool, MountedPool, patternBytes, rng, type TestPool } from '../helpers/env.js';
import { loopDisksUnavailable, makeLoopDisk, type LoopDisk } from '../helpers/loop-disk.js';
import { skipBecause } from '../helpers/skip.js';

const SQLITE_ROUNDS = Number(process.env.DFS_SQLITE_ROUNDS ?? 8);
const SEED = Number(process.env.DFS_REAL_SEED ?? Date.now() % 100_000);

/**
 * Builds the source tree at argv[1]: hard links within and across directories (of a regular file, a
 * FIFO, a device node and a symlink), FIFOs, character and block devices, symlinks (relative,
 * absolute, dangling, long, non-UTF-8, with a newline), odd names (non-UTF-8 bytes, spaces,
 * newlines, leading dashes, 255-byte names), sparse and empty files, modes with setuid, setgid and
 * sticky bits, owners, mtimes (before 1970, in 2100, with nanoseconds) and user.* xattrs.
 */
const FIXTURE = String.raw`
import os, sys, stat, random
root = os.fsencode(sys.argv[1])
os.umask(0)
def P(rel): return os.path.join(root, rel) if rel else root
def rnd(seed, n): return random.Random(seed).randbytes(n)
def write(rel, content):
    fd = os.open(P(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    view = memoryview(content)
    while view: view = view[os.write(fd, view):]
    os.close(fd)

for d in [b'dir1', b'dir2', b'dir2/sub', b'dir2/sub/deeper', b'empty-dir', b'sticky', b'setgid-dir', b'ro-dir', b'dev',
          b'odd', b'dir-\xe8', b'dir-\xe8/inner-\xe9']:
    os.mkdir(P(d), 0o755)

write(b'plain.txt', b'hello, world\n')
write(b'binary.bin', rnd(1, 300_000))
write(b'empty', b'')
write(b'zero-mode', b'nobody may read me\n')
write(b'setuid-prog', b'#!/bin/sh\necho setuid\n')
write(b'setgid-prog', b'#!/bin/sh\necho setgid\n')
write(b'exec.sh', b'#!/bin/sh\necho hi\n')
write(b'extent-exact', rnd(4, 65536))
write(b'extent-plus-one', rnd(5, 65537))
write(b'ro-dir/inside', b'in a read-only directory\n')
write(b'setgid-dir/file', b'in a set-group-ID directory\n')
write(b'sticky/file', b'in a sticky directory\n')
write(b'dir2/sub/deeper/leaf', rnd(8, 5000))
write(b'dir-\xe8/inner-\xe9/leaf-\xe8\xe9', b'under non-UTF-8 directories\n')
for rel in [b'ns-time', b'ms-time', b'old-1980', b'pre-epoch', b'y2100']:
    write(rel, rel + b'\n')

# Sparse: data, a hole, one byte, a hole, data at the end; and a file that is one hole.
fd = os.open(P(b'sparse'), os.O_WRONLY | os.O_CREAT, 0o644)
os.pwrite(fd, rnd(2, 4096), 0)
os.pwrite(fd, b'x', 1_500_000)
os.pwrite(fd, rnd(3, 100), 3 * 1024 * 1024 - 100)
os.close(fd)
fd = os.open(P(b'hole-only'), os.O_WRONLY | os.O_CREAT, 0o644)
os.ftruncate(fd, 1 << 20)
os.close(fd)

odd = [b'caf\xe8', b'caf\xe9', 'caf\u00e9'.encode(), b'with space', b' leading space', b'trailing space ', b'new\nline',
       b'-rf', b'--help', b'tab\there', b'back\\slash', b'quote\'"', b'\x01ctrl', b'\xff\xfe', '\U0001f4a9 emoji'.encode(),
       b'*?[glob]', b'.hidden', b'..dots', b'n' * 255, '\u00e9'.encode() * 127 + b'x', b'\xe9' * 255]
for i, n in enumerate(odd):
    write(b'odd/' + n, b'name %d: ' % i + n + b'\n')

# Hard links: across directories, to an odd name, to a FIFO, a device node and a symlink.
write(b'dir1/hl-a', rnd(6, 10_000))
for extra in [b'dir1/hl-b', b'dir2/sub/hl-c', b'hl-top']:
    os.link(P(b'dir1/hl-a'), P(extra))
os.link(P(b'odd/caf\xe8'), P(b'dir2/link-caf\xe8'))
os.mkfifo(P(b'fifo'), 0o640)
os.mkfifo(P(b'dir2/fifo2'), 0o600)
os.link(P(b'fifo'), P(b'dir1/fifo-link'))

# Device nodes, major:minor up to the largest Linux numbers.
for rel, kind, mode, major, minor in [(b'dev/null-like', stat.S_IFCHR, 0o666, 1, 3), (b'dev/tty-like', stat.S_IFCHR, 0o620, 4, 64),
                                      (b'dev/sda1-like', stat.S_IFBLK, 0o660, 8, 1), (b'dev/big-numbers', stat.S_IFBLK, 0o600, 4095, 1048575),
                                      (b'dev/chr-zero', stat.S_IFCHR, 0o600, 0, 0)]:
    os.mknod(P(rel), mode | kind, os.makedev(major, minor))
os.link(P(b'dev/null-like'), P(b'dir2/null-link'))

# Symlinks.
for rel, target in [(b'sym-rel', b'dir1/hl-a'), (b'sym-abs', b'/etc/hostname'), (b'sym-dangling', b'does/not/exist'),
                    (b'sym-odd', b'odd/caf\xe8'), (b'sym-newline', b'new\nline target'), (b'sym-long', b'x/' * 500 + b'end'),
                    (b'dir2/sym-dir', b'../dir1'), (b'odd/sym-\xe9', b'caf\xe9')]:
    os.symlink(target, P(rel))
os.link(P(b'sym-rel'), P(b'dir2/sym-rel-hardlink'), follow_symlinks=False)

# user.* xattrs (empty, binary, 2000 bytes, on a directory, on a hard-linked file, a non-ASCII name).
for rel, name, value in [(b'plain.txt', 'user.comment', b'hello'), (b'plain.txt', 'user.empty', b''),
                         (b'plain.txt', 'user.binary', bytes(range(256))), (b'binary.bin', 'user.big', rnd(7, 2000)),
                         (b'dir1', 'user.dir', b'd'), (b'odd/caf\xe8', 'user.latin1', b'\xe8'),
                         (b'dir1/hl-a', 'user.shared', b'by all its names'), (b'empty-dir', 'user.caf\u00e9', b'1')]:
    os.setxattr(P(rel), name, value)

# Owners (before the modes: chown clears set-user-ID bits).
for rel, uid, gid in [(b'binary.bin', 1000, 1000), (b'dir1', 1000, 100), (b'dir2/sub', 1234, 5678), (b'dev/tty-like', 0, 5),
                      (b'dev/sda1-like', 0, 6), (b'odd/caf\xe8', 65534, 65534), (b'odd/caf\xe9', 2_000_000, 2_000_001),
                      (b'sym-rel', 1234, 5678), (b'fifo', 1000, 1000), (b'setgid-dir', 0, 1234), (b'setuid-prog', 1000, 1000),
                      (b'dir-\xe8', 4242, 4243)]:
    os.chown(P(rel), uid, gid, follow_symlinks=False)
for rel, mode in [(b'binary.bin', 0o600), (b'empty', 0o444), (b'zero-mode', 0o000), (b'setuid-prog', 0o4755),
                  (b'setgid-prog', 0o2711), (b'exec.sh', 0o755), (b'sticky', 0o1777), (b'setgid-dir', 0o2775),
                  (b'ro-dir', 0o555), (b'odd/-rf', 0o640), (b'dir2/sub/deeper', 0o700), (b'sparse', 0o640)]:
    os.chmod(P(rel), mode)

# Modification times: one per entry (whole seconds), some special ones; the root last.
special = {b'ns-time': 1_234_567_890_123_456_789, b'ms-time': 1_600_000_000_123_000_000, b'old-1980': 315_532_800 * 10**9,
           b'pre-epoch': -31_536_000 * 10**9, b'y2100': 4_102_444_800 * 10**9}
every = []
def collect(rel):
    for name in sorted(os.listdir(P(rel))):
        child = os.path.join(rel, name) if rel else name
        every.append(child)
        if stat.S_ISDIR(os.lstat(P(child)).st_mode): collect(child)
collect(b'')
for i, rel in enumerate(every + [b'']):
    ns = special.get(rel, (1_500_000_000 + i * 86_399) * 10**9)
    os.utime(P(rel), ns=(ns, ns), follow_symlinks=False)
print(len(every))
`;

/** Lists the tree at argv[1] as JSON lines, sorted by name bytes (see the top of the file). */
const WALKER = String.raw`
import os, sys, stat, json, hashlib, errno
root = os.fsencode(sys.argv[1])
def show(rel): return repr(rel)[2:-1] if rel else '.'
out, inodes = [], {}
def visit(rel):
    full = os.path.join(root, rel) if rel else root
    e = {'path': show(rel)}
    out.append(e)
    try:
        st = os.lstat(full)
    except OSError as err:
        e['error'] = 'lstat: ' + errno.errorcode.get(err.errno, str(err.errno)); return
    m = st.st_mode
    t = ('dir' if stat.S_ISDIR(m) else 'file' if stat.S_ISREG(m) else 'symlink' if stat.S_ISLNK(m) else 'fifo' if stat.S_ISFIFO(m)
         else 'chr' if stat.S_ISCHR(m) else 'blk' if stat.S_ISBLK(m) else 'sock' if stat.S_ISSOCK(m) else 'other')
    # mtime_ns as a string: nanoseconds since 1970 do not fit the 53 bits of a JavaScript number.
    e.update(type=t, mode=oct(stat.S_IMODE(m)), uid=st.st_uid, gid=st.st_gid, nlink=st.st_nlink, mtime_ns=str(st.st_mtime_ns))
    if t != 'dir':
        e['size'] = st.st_size
        inodes.setdefault((st.st_dev, st.st_ino), []).append(e)
    if t in ('chr', 'blk'): e['rdev'] = '%d:%d' % (os.major(st.st_rdev), os.minor(st.st_rdev))
    try:
        if t == 'symlink': e['target'] = show(os.readlink(full))
        if t == 'file':
            h = hashlib.sha256()
            with open(os.open(full, os.O_RDONLY | os.O_NOFOLLOW), 'rb') as f:
                for chunk in iter(lambda: f.read(1 << 20), b''): h.update(chunk)
            e['sha256'] = h.hexdigest()
        xs = {}
        for n in sorted(os.listxattr(full, follow_symlinks=False)):
            if n.startswith('user.'): xs[n] = os.getxattr(full, n, follow_symlinks=False).hex()
        if xs: e['xattrs'] = xs
        if t == 'dir':
            for child in sorted(os.listdir(full)): visit(os.path.join(rel, child) if rel else child)
    except OSError as err:
        e['error'] = (err.strerror or '') + ' (' + errno.errorcode.get(err.errno, str(err.errno)) + ')'
visit(b'')
for group in inodes.values():
    if len(group) > 1:
        for e in group: e['linkgroup'] = group[0]['path']
for e in out: print(json.dumps(e, sort_keys=True))
`;

type Entry = Record<string, unknown> & { path: string };

function walk(dir: string): Entry[] {
  const r = spawnSync('python3', ['-c', WALKER, dir], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `the walker failed on ${dir}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Entry);
}

/** The differences between two walks: missing and extra entries, then differing fields; `kind` names which. */
function differences(expected: Entry[], actual: Entry[], labels: [string, string]): { kind: string; line: string }[] {
  const want = new Map(expected.map((e) => [e.path, e]));
  const have = new Map(actual.map((e) => [e.path, e]));
  const found: { kind: string; line: string }[] = [];
  for (const [list, other, label] of [
    [expected, have, labels[0]],
    [actual, want, labels[1]],
  ] as const) {
    for (const e of list)
      if (!other.has(e.path))
        found.push({ kind: `only on ${label}`, line: `${JSON.stringify(e.path)}: only on ${label} (${JSON.stringify(e)})` });
  }
  for (const e of expected) {
    const a = have.get(e.path);
    if (!a) continue;
    for (const key of [...new Set([...Object.keys(e), ...Object.keys(a)])].sort()) {
      const x = JSON.stringify(e[key]);
      const y = JSON.stringify(a[key]);
      if (x !== y) found.push({ kind: key, line: `${JSON.stringify(e.path)}: ${key} ${labels[0]}=${x ?? '-'} ${labels[1]}=${y ?? '-'}` });
    }
  }
  return found;
}

/** A failure message: what the programs said and the first differing entries of each comparison (long lines cut). */
function report(problems: string[]): string {
  const lines = problems.join('\n').split('\n');
  const shown = lines.slice(0, 200).map((l) => (l.length > 300 ? `${l.slice(0, 160)} [...] ${l.slice(-120)}` : l));
  const more = lines.length > 200 ? `\n... and ${lines.length - 200} more lines` : '';
  return `${problems.length} problem(s):\n${shown.join('\n')}${more}`;
}

function compareTrees(problems: string[], what: string, expected: string, actual: string, labels: [string, string]): void {
  const want = walk(expected);
  const have = walk(actual);
  // A walk that saw nothing cannot vouch for anything: the reference must hold the whole fixture.
  assert.ok(want.length > 60, `${what}: the reference ${expected} holds only ${want.length} entries`);
  const diff = differences(want, have, labels);
  if (!diff.length) return;
  // First a count per kind (only on one side, or the field that differs), then the entries.
  const kinds = new Map<string, number>();
  for (const d of diff) kinds.set(d.kind, (kinds.get(d.kind) ?? 0) + 1);
  const summary = [...kinds].map(([k, n]) => `${k} ${n}`).join(', ');
  problems.push(`${what}: ${diff.length} difference(s) (${summary}), ${labels[0]} ${expected} vs ${labels[1]} ${actual}:`);
  problems.push(...diff.slice(0, 25).map((d) => `  ${d.line}`));
  if (diff.length > 25) problems.push(`  ... and ${diff.length - 25} more differences`);
}

interface Run {
  status: number | null;
  out: string;
}

/**
 * Runs a program under timeout(1), which signals its whole process group: a program that hangs (rsync
 * waits forever for a hard-link leader it could not stat) is killed with its children, and says so.
 */
function run(cmd: string, args: string[], options: SpawnSyncOptions = {}, seconds = 60): Run {
  const r = spawnSync('timeout', ['-k', '5', String(seconds), cmd, ...args], {
    encoding: 'utf8',
    timeout: (seconds + 30) * 1000,
    maxBuffer: 64 << 20,
    ...options,
  });
  const hung = r.status === 124 || r.status === 137 ? `\n(did not finish within ${seconds} s: killed)` : '';
  const out = `${String(r.stdout ?? '')}${String(r.stderr ?? '')}${r.error ? `\n${String(r.error)}` : ''}${hung}`;
  return { status: r.status, out };
}

/** Runs a program; a non-zero exit becomes a problem line with its command and output. */
function runChecked(problems: string[], cmd: string, args: string[], seconds = 60): Run {
  const r = run(cmd, args, {}, seconds);
  if (r.status !== 0) problems.push(`\`${cmd} ${args.join(' ')}\` exited ${r.status}:\n${indent(r.out)}`);
  return r;
}

function indent(text: string, lines = 40): string {
  const all = text.trimEnd().split('\n');
  return (
    all
      .slice(0, lines)
      .map((l) => `    | ${l}`)
      .join('\n') + (all.length > lines ? `\n    | ... ${all.length - lines} more lines` : '')
  );
}

const TAR_CREATE = ['--format=posix', '--xattrs', '--xattrs-include=user.*', '--numeric-owner', '--sparse'];
const TAR_EXTRACT = ['--xattrs', '--xattrs-include=user.*', '--numeric-owner', '--same-owner', '--preserve-permissions'];
const RSYNC = ['-aHAX', '--numeric-ids'];

describe('real programs through a DynamicFS mount (issue 18)', () => {
  let p: TestPool | undefined;
  let m: MountedPool | undefined;
  let ext4: LoopDisk | undefined;
  let unavailable: string | null = null;
  let src = '';

  before(async () => {
    unavailable = loopDisksUnavailable();
    if (unavailable) return;
    for (const program of ['tar', 'rsync', 'git', 'python3', 'mkfs.ext4']) {
      // scripts/test.sh installs them (ensure_debian_packages): a missing one is a broken set-up, not a skip.
      assert.equal(spawnSync('sh', ['-c', `command -v ${program}`]).status, 0, `${program} is not installed`);
    }
    p = await makePool({ redundancy: 'replication:2', disks: 2 });
    // 4 KiB blocks: below 512 MiB mkfs.ext4 picks 1 KiB ones, and a file's xattrs must fit one block.
    ext4 = makeLoopDisk(p.root, 'ext4', 256, ['-b', '4096', '-I', '256']);
    src = path.join(ext4.path, 'src');
    fs.mkdirSync(src);
    const made = spawnSync('python3', ['-c', FIXTURE, src], { encoding: 'utf8' });
    assert.equal(made.status, 0, `the fixture could not be built on ext4: ${made.stderr}`);
    m = await MountedPool.start(p.pool, p.mnt);
  });

  after(async () => {
    await m?.stop();
    ext4?.release();
    if (p) cleanup(p.root);
  });

  function ready(t: TestContext): { mnt: string; e: string } | undefined {
    if (unavailable) {
      skipBecause(t, unavailable);
      return undefined;
    }
    return { mnt: (p as TestPool).mnt, e: (ext4 as LoopDisk).path };
  }

  // The archive made on ext4 and its extraction into the mount, shared by both tar tests.
  let intoMount: Run | undefined;
  function tarIntoMount(mnt: string, e: string): Run {
    if (intoMount) return intoMount;
    const archive = path.join(e, 'src.tar');
    const made = run('tar', [...TAR_CREATE, '-C', src, '-cf', archive, '.']);
    assert.equal(made.status, 0, `tar -c on ext4 failed: ${made.out}`);
    fs.mkdirSync(path.join(e, 'tar-ref'));
    const ref = run('tar', [...TAR_EXTRACT, '-C', path.join(e, 'tar-ref'), '-xf', archive]);
    assert.equal(ref.status, 0, `tar -x onto ext4 (the reference) failed: ${ref.out}`);
    fs.mkdirSync(path.join(mnt, 'tar'));
    intoMount = run('tar', [...TAR_EXTRACT, '-C', path.join(mnt, 'tar'), '-xf', archive]);
    return intoMount;
  }

  test('tar: an archive made on ext4 extracts into the mount exactly as onto ext4', (t) => {
    const r = ready(t);
    if (!r) return;
    const problems: string[] = [];
    const x = tarIntoMount(r.mnt, r.e);
    if (x.status !== 0) problems.push(`tar -x into the mount exited ${x.status}:\n${indent(x.out)}`);
    compareTrees(problems, 'extracted into the mount', path.join(r.e, 'tar-ref'), path.join(r.mnt, 'tar'), ['ext4', 'dynamicfs']);
    assert.equal(problems.length, 0, report(problems));
  });

  test('tar: an archive made inside the mount extracts onto ext4 exactly as the one made on ext4', (t) => {
    const r = ready(t);
    if (!r) return;
    const problems: string[] = [];
    const x = tarIntoMount(r.mnt, r.e);
    if (x.status !== 0) problems.push(`(the tree in the mount came from a tar -x that exited ${x.status}; see the test before)`);
    const archive = path.join(r.mnt, 'from-mount.tar');
    runChecked(problems, 'tar', [...TAR_CREATE, '-C', path.join(r.mnt, 'tar'), '-cf', archive, '.']);
    fs.mkdirSync(path.join(r.e, 'tar-back'));
    runChecked(problems, 'tar', [...TAR_EXTRACT, '-C', path.join(r.e, 'tar-back'), '-xf', archive]);
    compareTrees(problems, 'made in the mount, extracted onto ext4', path.join(r.e, 'tar-ref'), path.join(r.e, 'tar-back'), [
      'ext4',
      'via-dynamicfs',
    ]);
    assert.equal(problems.length, 0, report(problems));
  });

  test('rsync -aHAX: ext4 -> mount -> ext4 matches the same copies made on ext4', (t) => {
    const r = ready(t);
    if (!r) return;
    const problems: string[] = [];
    const refMid = path.join(r.e, 'rsync-mid') + '/';
    const refEnd = path.join(r.e, 'rsync-ref') + '/';
    const mid = path.join(r.mnt, 'rsync') + '/';
    const end = path.join(r.e, 'rsync-back') + '/';
    const a = run('rsync', [...RSYNC, `${src}/`, refMid]);
    assert.equal(a.status, 0, `rsync ext4 -> ext4 (the reference) failed: ${a.out}`);
    const b = run('rsync', [...RSYNC, refMid, refEnd]);
    assert.equal(b.status, 0, `rsync ext4 -> ext4 (the reference) failed: ${b.out}`);
    runChecked(problems, 'rsync', [...RSYNC, `${src}/`, mid], 30);
    compareTrees(problems, 'ext4 -> mount', refMid, mid, ['ext4', 'dynamicfs']);
    runChecked(problems, 'rsync', [...RSYNC, mid, end], 30);
    compareTrees(problems, 'mount -> ext4', refEnd, end, ['ext4', 'via-dynamicfs']);
    assert.equal(problems.length, 0, report(problems));
  });

  test('git: clone into the mount, fsck and status clean, commit, gc, fsck again, clone back out', (t) => {
    const r = ready(t);
    if (!r) return;
    const root = (p as TestPool).root;
    const home = path.join(root, 'git-home');
    fs.mkdirSync(home);
    const env = {
      ...process.env,
      HOME: home,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'DynamicFS test',
      GIT_AUTHOR_EMAIL: 'test@example.invalid',
      GIT_COMMITTER_NAME: 'DynamicFS test',
      GIT_COMMITTER_EMAIL: 'test@example.invalid',
      LC_ALL: 'C',
    };
    // Every git call must succeed; the first that does not ends the test with its command and output.
    const git = (cwd: string, ...args: string[]): string => {
      const res = run('git', args, { cwd, env });
      assert.equal(res.status, 0, `\`git ${args.join(' ')}\` in ${cwd} exited ${res.status}:\n${indent(res.out)}`);
      return res.out;
    };
    const write = (file: string, data: string | Buffer, mode = 0o644): void => {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, data, { mode });
    };

    // The source: commits on two branches, an annotated and a light tag, binary files, an executable,
    // a symlink; packed by gc, then one more commit left loose.
    const s = path.join(root, 'git-src');
    fs.mkdirSync(s);
    git(s, 'init', '-q', '-b', 'main');
    write(path.join(s, 'README.md'), '# a repository\n');
    write(path.join(s, 'bin/data.bin'), patternBytes(11, 300_000));
    write(path.join(s, 'script.sh'), '#!/bin/sh\necho hi\n', 0o755);
    fs.symlinkSync('README.md', path.join(s, 'link'));
    git(s, 'add', '-A');
    git(s, 'commit', '-q', '-m', 'one');
    git(s, 'checkout', '-q', '-b', 'feature');
    write(path.join(s, 'bin/data.bin'), patternBytes(12, 300_000));
    write(path.join(s, 'feature.txt'), 'feature\n');
    git(s, 'add', '-A');
    git(s, 'commit', '-q', '-m', 'feature work');
    git(s, 'checkout', '-q', 'main');
    write(path.join(s, 'big.bin'), patternBytes(13, 1 << 20));
    git(s, 'add', '-A');
    git(s, 'commit', '-q', '-m', 'two');
    git(s, 'tag', '-a', 'v1.0', '-m', 'release 1.0');
    write(path.join(s, 'README.md'), '# a repository\n\nmore words\n');
    git(s, 'commit', '-q', '-am', 'three');
    git(s, 'tag', 'v1.1');
    git(s, 'branch', 'old', 'v1.0');
    git(s, 'gc', '-q');
    write(path.join(s, 'after-gc.txt'), 'a loose object\n');
    git(s, 'add', '-A');
    git(s, 'commit', '-q', '-m', 'four');

    const c = path.join(r.mnt, 'clone');
    git(r.mnt, 'clone', '-q', `file://${s}`, c);
    git(c, 'fsck', '--full', '--strict');
    assert.equal(git(c, 'status', '--porcelain', '--untracked-files=all'), '', 'git status in the fresh clone is not clean');
    assert.equal(git(c, 'rev-parse', 'HEAD'), git(s, 'rev-parse', 'HEAD'), 'HEAD of the clone');
    assert.equal(git(c, 'ls-files', '-s'), git(s, 'ls-files', '-s'), 'the clone checked out other modes or objects');
    // Tags, and the branches as origin/* (less origin/HEAD): names and commits as in the source.
    const refs = (dir: string, prefix: string): string =>
      git(dir, 'for-each-ref', `--format=%(objectname) %(refname:lstrip=${prefix.split('/').length - 1})`, prefix).replace(
        /^.* HEAD\n/m,
        '',
      );
    assert.equal(refs(c, 'refs/tags/'), refs(s, 'refs/tags/'), 'tags of the clone');
    assert.equal(refs(c, 'refs/remotes/origin/'), refs(s, 'refs/heads/'), 'branches of the clone');
    git(c, 'checkout', '-q', 'feature');
    assert.equal(fs.readFileSync(path.join(c, 'feature.txt'), 'utf8'), 'feature\n');
    git(c, 'checkout', '-q', 'main');
    assert.equal(git(c, 'status', '--porcelain', '--untracked-files=all'), '', 'git status after switching branches');

    // A commit inside the mount, then gc (repack, prune) inside the mount.
    write(path.join(c, 'README.md'), '# a repository\n\nchanged inside the mount\n');
    write(path.join(c, 'new.bin'), patternBytes(14, 2 << 20));
    fs.rmSync(path.join(c, 'after-gc.txt'));
    git(c, 'add', '-A');
    git(c, 'commit', '-q', '-m', 'five, made inside the mount');
    assert.equal(git(c, 'rev-list', '--count', 'HEAD').trim(), '5');
    git(c, 'gc', '-q', '--prune=now');
    git(c, 'fsck', '--full', '--strict');
    assert.equal(git(c, 'status', '--porcelain', '--untracked-files=all'), '', 'git status after gc');
    assert.match(git(c, 'count-objects', '-v'), /^count: 0$/m, 'gc left loose objects');

    // Another process reads the packs gc wrote in the mount.
    const back = path.join(root, 'git-back');
    git(root, 'clone', '-q', `file://${c}`, back);
    git(back, 'fsck', '--full', '--strict');
    assert.equal(git(back, 'rev-parse', 'HEAD'), git(c, 'rev-parse', 'HEAD'));
    assert.equal(git(back, 'ls-files', '-s'), git(c, 'ls-files', '-s'));
    assert.ok(fs.readFileSync(path.join(back, 'new.bin')).equals(patternBytes(14, 2 << 20)), 'new.bin came back different');
  });

  for (const mode of ['WAL', 'DELETE'] as const) {
    test(`sqlite (journal_mode=${mode}, synchronous=FULL): ${SQLITE_ROUNDS} rounds of kill -9 under a writer; integrity_check ok, every commit kept (seed ${SEED})`, async (t) => {
      const r = ready(t);
      if (!r) return;
      await sqliteCrashLoop(mode);
    });
  }

  async function sqliteCrashLoop(mode: 'WAL' | 'DELETE'): Promise<void> {
    const tp = p as TestPool;
    const random = rng(SEED + (mode === 'WAL' ? 0 : 1));
    const dir = path.join(tp.mnt, `sqlite-${mode}`);
    fs.mkdirSync(dir);
    const db = path.join(dir, 'test.db');
    const record = path.join(tp.root, `sqlite-${mode}.committed`); // outside the mount
    let progress = 0;
    for (let round = 0; round < SQLITE_ROUNDS; round++) {
      const mount = m as MountedPool;
      const before = lastCommitted(record);
      let stderr = '';
      const writer = spawn('python3', ['-c', SQLITE_WRITER, db, mode, record], { stdio: ['ignore', 'ignore', 'pipe'] });
      writer.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<void>((res) => writer.once('exit', () => res()));
      // Kill once the writer has committed a few rows this round, at a random moment after that.
      const end = Date.now() + 30_000;
      while (lastCommitted(record) < before + 3 && writer.exitCode === null && Date.now() < end) await sleep(20);
      if (writer.exitCode === null) await sleep(random() * 700);
      const died = writer.exitCode !== null ? `the writer exited (${writer.exitCode}) before the kill:\n${indent(stderr)}` : '';
      await mount.kill({ detach: false });
      writer.kill('SIGKILL');
      await exited;
      await mount.detach();
      m = await MountedPool.start(tp.pool, tp.mnt);
      const last = lastCommitted(record);
      assert.equal(died, '', `round ${round}: ${died}`);
      assert.ok(last >= before + 3, `round ${round}: the writer committed only ${last - before} rows in 30 s:\n${indent(stderr)}`);
      progress += last - before;
      const check = spawnSync('python3', ['-c', SQLITE_CHECK, db], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(check.status, 0, `round ${round}: the check could not open ${db}:\n${indent(check.stderr)}`);
      const c = JSON.parse(check.stdout) as SqliteCheck;
      const where = `round ${round} (${mode}, last commit the writer saw: ${last})`;
      assert.deepEqual(c.integrity, ['ok'], `${where}: PRAGMA integrity_check`);
      assert.equal(c.journal, mode.toLowerCase(), `${where}: journal_mode`);
      assert.ok(c.max >= last, `${where}: the database ends at row ${c.max}: committed rows ${c.max + 1}..${last} are lost`);
      assert.ok(c.max <= last + 1, `${where}: the database holds rows up to ${c.max}, more than one beyond the last commit`);
      assert.equal(c.count, c.max, `${where}: ${c.max - c.count} rows missing below ${c.max}, first: ${JSON.stringify(c.gaps)}`);
      assert.deepEqual(c.bad, [], `${where}: rows whose payload is wrong`);
      assert.equal(c.counter, c.count, `${where}: the counter row says ${c.counter} commits, the table holds ${c.count} rows`);
    }
    assert.ok(progress >= SQLITE_ROUNDS * 3, `only ${progress} commits over ${SQLITE_ROUNDS} rounds`);
  }
});

interface SqliteCheck {
  integrity: string[];
  journal: string;
  max: number;
  count: number;
  gaps: number[];
  bad: number[];
  counter: number;
}

/** The highest number the writer recorded after its COMMIT returned (complete lines only). */
function lastCommitted(record: string): number {
  if (!fs.existsSync(record)) return 0;
  const lines = fs.readFileSync(record, 'utf8').split('\n');
  lines.pop(); // the part after the last newline: empty, or a line the writer did not finish
  return lines.length ? Number(lines[lines.length - 1]) : 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * argv: database, journal mode, record file. Each transaction inserts row n (a payload of 10 B to
 * 20 KiB derived from n, so overflow pages and WAL checkpoints happen) and bumps a counter row; after
 * COMMIT returns, n is appended to the record file outside the mount.
 */
const SQLITE_WRITER = String.raw`
import sqlite3, sys, os, random, hashlib
db, mode, record = sys.argv[1], sys.argv[2], sys.argv[3]
con = sqlite3.connect(db, isolation_level=None, timeout=30)
got = con.execute('PRAGMA journal_mode=' + mode).fetchone()[0]
if got.lower() != mode.lower(): sys.exit('journal_mode is ' + got)
con.execute('PRAGMA synchronous=FULL')
con.execute('CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY, pad BLOB NOT NULL, h TEXT NOT NULL)')
con.execute('CREATE TABLE IF NOT EXISTS c (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)')
con.execute('INSERT OR IGNORE INTO c VALUES (1, 0)')
n = con.execute('SELECT coalesce(max(n), 0) FROM t').fetchone()[0]
fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
while True:
    n += 1
    r = random.Random(n)
    pad = r.randbytes(r.choice([10, 300, 4000, 20000]))
    con.execute('BEGIN IMMEDIATE')
    con.execute('INSERT INTO t VALUES (?, ?, ?)', (n, pad, hashlib.sha256(pad).hexdigest()))
    con.execute('UPDATE c SET v = v + 1 WHERE k = 1')
    con.execute('COMMIT')
    os.write(fd, b'%d\n' % n)
`;

const SQLITE_CHECK = String.raw`
import sqlite3, sys, json, random, hashlib
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
out = {'integrity': [row[0] for row in con.execute('PRAGMA integrity_check')]}
out['journal'] = con.execute('PRAGMA journal_mode').fetchone()[0]
rows = con.execute('SELECT n, pad, h FROM t ORDER BY n').fetchall()
out['max'] = rows[-1][0] if rows else 0
out['count'] = len(rows)
have = set(row[0] for row in rows)
out['gaps'] = [i for i in range(1, out['max'] + 1) if i not in have][:10]
bad = []
for n, pad, h in rows:
    r = random.Random(n)
    if pad != r.randbytes(r.choice([10, 300, 4000, 20000])) or h != hashlib.sha256(pad).hexdigest(): bad.append(n)
out['bad'] = bad[:10]
out['counter'] = con.execute('SELECT v FROM c WHERE k = 1').fetchone()[0]
print(json.dumps(out))
`;
