import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { PoolStatus } from '../../engine/report/status.js';
import { isMounted, lazyUnmount } from '../../engine/fuse/mount.js';
import { readLockOwner } from '../../engine/pool/lock.js';
import { poolMountAt, readMounts } from '../../engine/util/mountinfo.js';
import { ControlPlane } from '../helpers/control-plane.js';
import { csiClient } from '../helpers/csi-client.js';
import { CsiPlugin, startCsiNode, stopCsiNode, type CsiNode } from '../helpers/csi-env.js';
import {
  CLI,
  cleanup,
  cli,
  cliJson,
  eventually,
  freePort,
  makePool,
  MountedPool,
  patternBytes,
  tempDir,
  type TestPool,
} from '../helpers/env.js';
import { skipBecause } from '../helpers/skip.js';

// Issue 18 (POSIX semantics): a pool's mount taken away from outside, as an administrator or kubelet
// does (umount, fusermount -u, umount -l), ends its daemon cleanly: what was written is kept, the pool
// is released and can be mounted again at once, status tells the truth, and the node agent and the CSI
// plugin get the pool mounted again and go on.

const execAsync = promisify(execFile);
const MiB = 2 ** 20;
const MOUNT = { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
const HOW: Record<string, (mnt: string) => string[]> = {
  umount: (mnt) => ['umount', mnt],
  'fusermount -u': (mnt) => ['fusermount', '-u', mnt],
  'umount -l': (mnt) => ['umount', '-l', mnt],
};

/** How a child process ended, or null if it still runs after `ms`. */
function exitWithin(child: ChildProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** A mount daemon started by the CLI (`dynamicfs mount --foreground`), on /dev/fuse or through fuse-native. */
async function startDaemon(p: TestPool, fuse: 'kernel' | 'fuse-native'): Promise<MountedPool> {
  if (fuse === 'fuse-native') process.env.DYNAMICFS_FUSE = 'fuse-native';
  try {
    return await MountedPool.start(p.pool, p.mnt);
  } finally {
    delete process.env.DYNAMICFS_FUSE;
  }
}

function sh(cmd: string): { code: number | null; out: string } {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

for (const fuse of ['kernel', 'fuse-native'] as const) {
  for (const how of Object.keys(HOW)) {
    test(`${fuse === 'kernel' ? '/dev/fuse' : 'fuse-native'}: \`${how}\` of the mount ends the daemon with 0, releases the pool, status says so, and it mounts again with the data`, async () => {
      const p = await makePool({ redundancy: 'replication:2', disks: 2 });
      let m = await startDaemon(p, fuse);
      try {
        // Written and closed before the umount (several extents, the last one partial).
        const data = patternBytes(18, 3 * 64 * 1024 + 777);
        fs.writeFileSync(path.join(p.mnt, 'kept'), data);
        const t0 = Date.now();
        const [cmd, ...args] = HOW[how](p.mnt);
        execFileSync(cmd, args);
        const exit = await exitWithin(m.child, 10_000);
        const seconds = (Date.now() - t0) / 1000;
        assert.deepEqual(exit, { code: 0, signal: null }, `the daemon did not exit with 0 within 10 s of ${how}:\n${m.log().slice(-3000)}`);
        assert.ok(seconds < 5, `the daemon took ${seconds} s to exit after ${how}`);
        process.stdout.write(`# ${fuse} ${how}: the daemon exited ${seconds.toFixed(2)} s after the umount\n`);
        assert.match(m.log(), /the mount at \S+ was removed from outside/);
        assert.match(m.log(), /stopped cleanly/);
        // The pool is released.
        assert.equal(readLockOwner(p.pool), undefined);
        assert.ok(!fs.existsSync(path.join(p.pool, 'owner.lock')), 'owner.lock is still there');
        assert.equal(await isMounted(p.mnt), false);
        // status: not mounted, and how the last mount ended.
        const st = cliJson<PoolStatus>('status', p.pool);
        assert.equal(st.mounted, null);
        assert.equal(st.mountGone, null);
        assert.equal(st.lastUnmount?.fromOutside, true);
        assert.equal(st.lastUnmount?.mountpoint, p.mnt);
        assert.equal(st.lastUnmount?.pid, m.child.pid);
        assert.match(
          cli('status', p.pool).stdout,
          /^mounted {2}no \(the last mount, at \S+ by pid \d+, ended \S+: removed from outside\)$/m,
        );
        // Mounted again at once, with the data.
        m = await startDaemon(p, fuse);
        assert.ok(fs.readFileSync(path.join(p.mnt, 'kept')).equals(data), 'the data written before the umount did not read back');
        assert.equal(cliJson<PoolStatus>('status', p.pool).mounted?.mountpoint, p.mnt);
        assert.equal(await m.stop(), 0);
      } finally {
        await m.stop();
        if (await isMounted(p.mnt)) await lazyUnmount(p.mnt);
        cleanup(p.root);
      }
    });
  }
}

test('/dev/fuse: `umount -l` with a file still open: served until its last close, status says the mount is gone meanwhile, then the daemon exits 0 and both writes read back', async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 2 });
  let m = await startDaemon(p, 'kernel');
  const fifo = path.join(p.root, 'go');
  execFileSync('mkfifo', [fifo]);
  const file = path.join(p.mnt, 'open');
  // A writer keeps the file open across the umount, and writes again after it.
  const writer = spawn('sh', ['-c', 'exec 3>"$1"; printf part1 >&3; read x < "$2"; printf part2 >&3', 'sh', file, fifo], {
    stdio: 'ignore',
  });
  try {
    await eventually('the first write', () => (fs.existsSync(file) && fs.statSync(file).size === 5 ? true : undefined), 10_000);
    execFileSync('umount', ['-l', p.mnt]);
    assert.equal(await isMounted(p.mnt), false);
    // The open file holds the connection: the daemon serves it (two polls of mountinfo and more).
    assert.equal(await exitWithin(m.child, 3000), null, `the daemon ended while a file was still open:\n${m.log().slice(-2000)}`);
    const st = cliJson<PoolStatus>('status', p.pool);
    assert.equal(st.mounted, null, 'status says mounted at a mount that is gone');
    assert.deepEqual(st.mountGone, { pid: m.child.pid, mountpoint: p.mnt });
    assert.match(cli('status', p.pool).stdout, /^mounted {2}no: the mount at \S+ was removed from outside; pid \d+ still owns the pool/m);
    assert.match(m.log(), /removed from outside \(lazily\)/);
    // The pool cannot be mounted twice meanwhile: the CLI says who holds it.
    assert.notEqual(cli('mount', p.pool, path.join(p.root, 'elsewhere')).code, 0);
    // The writer goes on and closes: the kernel closes the connection, the daemon flushes and exits.
    const t0 = Date.now();
    await execAsync('sh', ['-c', 'echo go > "$1"', 'sh', fifo]);
    assert.deepEqual(await exitWithin(writer, 10_000), { code: 0, signal: null });
    const exit = await exitWithin(m.child, 10_000);
    assert.deepEqual(exit, { code: 0, signal: null }, `the daemon did not exit with 0 after the last close:\n${m.log().slice(-3000)}`);
    process.stdout.write(
      `# umount -l with an open file: the daemon exited ${((Date.now() - t0) / 1000).toFixed(2)} s after the last close\n`,
    );
    assert.equal(readLockOwner(p.pool), undefined);
    assert.equal(cliJson<PoolStatus>('status', p.pool).lastUnmount?.fromOutside, true);
    m = await startDaemon(p, 'kernel');
    assert.equal(fs.readFileSync(path.join(p.mnt, 'open'), 'utf8'), 'part1part2');
    assert.equal(await m.stop(), 0);
  } finally {
    writer.kill('SIGKILL');
    await m.stop();
    if (await isMounted(p.mnt)) await lazyUnmount(p.mnt);
    cleanup(p.root);
  }
});

test('CSI: with the pool mount removed from outside, a publish waits for the pool to be mounted again and goes on; published targets are bound again', async () => {
  let n: CsiNode | undefined;
  try {
    n = await startCsiNode({ redundancy: 'replication:2', disks: 2 });
    const node = n;
    const v = (await n.client.controller.CreateVolume({
      name: 'pvc-u',
      capacity_range: { required_bytes: 4 * MiB },
      volume_capabilities: [MOUNT],
    })) as { volume: { volume_id: string } };
    const id = v.volume.volume_id;
    const t1 = path.join(n.targets, 'pods/u1/vol');
    const t2 = path.join(n.targets, 'pods/u2/vol');
    await n.client.node.NodePublishVolume({ volume_id: id, target_path: t1, volume_capability: MOUNT });
    assert.equal(sh(`echo before > ${t1}/f`).code, 0);

    // An administrator unmounts the pool's mount. The bind mount at t1 still holds its connection: the
    // daemon serves t1 but says its mount is gone, and so does the plugin's probe.
    execFileSync('umount', [n.pool.mnt]);
    const gone = await eventually(
      'status to say the mount is gone',
      () => cliJson<PoolStatus>('status', node.pool.pool).mountGone ?? undefined,
      10_000,
    );
    assert.equal(gone.pid, n.mount.child.pid);
    assert.equal(((await n.client.identity.Probe({})) as { ready: { value: boolean } }).ready.value, false, 'Probe says ready');
    // A publish now waits for the mount instead of binding from the empty directory under it.
    let settled = false;
    const t2Published = n.client.node.NodePublishVolume({ volume_id: id, target_path: t2, volume_capability: MOUNT }).finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(settled, false, 'the publish did not wait for the mount');

    // The pool is mounted again (what the node agent does; here by hand): the publish goes on.
    // Not spawnSync: the old daemon is this process's child, and a zombie this process cannot reap
    // while blocked would look alive to the CLI, which waits for it to be gone.
    await execAsync(process.execPath, [CLI, 'unmount', n.pool.pool]);
    assert.equal(n.mount.child.exitCode, 0);
    n.mount = await MountedPool.start(n.pool.pool, n.pool.mnt);
    await t2Published;
    assert.equal(sh(`cat ${t2}/f`).out, 'before\n');
    await eventually('t1 to be bound again', () => (sh(`cat ${t1}/f`).code === 0 ? true : undefined), 15_000);
    assert.equal(sh(`echo after >> ${t1}/f && cat ${t2}/f`).out, 'before\nafter\n');
    assert.equal(((await n.client.identity.Probe({})) as { ready: { value: boolean } }).ready.value, true);
    await n.client.node.NodeUnpublishVolume({ volume_id: id, target_path: t1 });
    await n.client.node.NodeUnpublishVolume({ volume_id: id, target_path: t2 });
  } finally {
    await stopCsiNode(n);
    if (n) cleanup(n.pool.root);
  }
});

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const OPERATOR = path.join(repo, 'dist/operator/src/main.js');

test(
  'node agent: a pool mount removed from outside is mounted again by a new daemon; a publish meanwhile goes on, published volumes are bound again',
  { timeout: 300_000 },
  async (t: TestContext) => {
    const cp = await ControlPlane.start();
    if (!cp) {
      const why = 'kube-apiserver, etcd or kubectl is not built (test/fixtures/build needs Go and the module proxy)';
      if (process.env.CI) throw new Error(why);
      return skipBecause(t, why);
    }
    const root = tempDir('dfs-eu-agent-');
    const procs: ChildProcess[] = [];
    let agentLog = '';
    const poolDir = path.join(root, 'state/pools/p1');
    const mnt = path.join(root, 'state/mnt/p1');
    try {
      const disks = [1, 2].map((i) => path.join(root, `disk${i}`));
      const yaml = `apiVersion: dynamicfs.io/v1alpha1
kind: DynamicFSPool
metadata:
  name: p1
spec:
  nodeName: eu-node
  redundancy: replication:2
  extentSize: 64Ki
  disks:
${disks.map((d) => `    - path: ${d}\n      capacity: 64Mi\n      failureDomain: ${path.basename(d)}`).join('\n')}
`;
      assert.equal(cp.kubectlRun(['apply', '-f', '-'], yaml).code, 0);
      const agent = spawn(
        process.execPath,
        [
          OPERATOR,
          'node',
          '--node-name',
          'eu-node',
          '--state-dir',
          path.join(root, 'state'),
          '--report-seconds',
          '1',
          '--metrics-listen',
          `127.0.0.1:${await freePort()}`,
          '--disk-root',
          root,
          '--kubeconfig',
          cp.kubeconfig,
          '--log-format',
          'json',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      procs.push(agent);
      agent.stdout.on('data', (d: Buffer) => (agentLog += d.toString()));
      agent.stderr.on('data', (d: Buffer) => (agentLog += d.toString()));
      const mounted = async () => poolMountAt(await readMounts(), mnt, 'dynamicfs:p1') !== undefined;
      await eventually(
        'the node agent to mount the pool with both disks',
        async () => {
          if (!(await mounted())) return undefined;
          const st = cliJson<PoolStatus>('status', poolDir);
          return st.disks.length === 2 ? true : undefined;
        },
        90_000,
      );
      fs.writeFileSync(path.join(mnt, 'kept'), 'written before\n');

      fs.mkdirSync(path.join(root, 'kubelet'));
      const socket = path.join(root, 'csi.sock');
      const csi = await CsiPlugin.start(socket, {}, path.join(root, 'kubelet'), 'eu-node', ['--pools-dir', path.join(root, 'state/pools')]);
      procs.push(csi.child);
      const client = csiClient(socket);
      try {
        const v = (await client.controller.CreateVolume({
          name: 'pvc-a',
          capacity_range: { required_bytes: 4 * MiB },
          parameters: { pool: 'p1' },
          volume_capabilities: [MOUNT],
        })) as { volume: { volume_id: string } };
        const id = v.volume.volume_id;
        const t1 = path.join(root, 'kubelet/pods/a1/vol');
        const t2 = path.join(root, 'kubelet/pods/a2/vol');
        await client.node.NodePublishVolume({ volume_id: id, target_path: t1, volume_capability: MOUNT });
        assert.equal(sh(`echo one > ${t1}/f`).code, 0);
        const old = readLockOwner(poolDir);
        assert.ok(old, 'no daemon owns the pool');

        // The pool's mount is taken away; a pod is scheduled meanwhile.
        const t0 = Date.now();
        execFileSync('umount', [mnt]);
        const t2Published = client.node.NodePublishVolume({ volume_id: id, target_path: t2, volume_capability: MOUNT });
        const fresh = await eventually(
          'a new daemon with the pool mounted',
          async () => {
            const o = readLockOwner(poolDir);
            return o && o.pid !== old.pid && (await mounted()) ? o : undefined;
          },
          60_000,
        );
        process.stdout.write(`# node agent: the pool was mounted again ${((Date.now() - t0) / 1000).toFixed(2)} s after the umount\n`);
        await t2Published;
        assert.throws(() => process.kill(old.pid, 0), 'the old daemon still runs');
        assert.match(agentLog, /the mount of pool p1 at \S+ is gone \(removed from outside\)/);
        assert.equal(fs.readFileSync(path.join(mnt, 'kept'), 'utf8'), 'written before\n');
        assert.equal(sh(`cat ${t2}/f`).out, 'one\n');
        await eventually('t1 to be bound again', () => (sh(`cat ${t1}/f`).code === 0 ? true : undefined), 15_000);
        assert.equal(sh(`echo two >> ${t1}/f && cat ${t2}/f`).out, 'one\ntwo\n');
        const st = cliJson<PoolStatus>('status', poolDir);
        assert.equal(st.mounted?.mountpoint, mnt);
        assert.equal(st.mounted?.pid, fresh.pid);
        await client.node.NodeUnpublishVolume({ volume_id: id, target_path: t1 });
        await client.node.NodeUnpublishVolume({ volume_id: id, target_path: t2 });
      } finally {
        client.close();
      }
    } catch (err) {
      (err as Error).message += `\n--- node agent:\n${agentLog.slice(-4000)}`;
      throw err;
    } finally {
      for (const p of procs)
        if (p.exitCode === null && p.signalCode === null) {
          const exited = new Promise((r) => p.once('exit', r));
          p.kill('SIGTERM');
          await exited;
        }
      // The node agent's daemons outlive it by design.
      if (fs.existsSync(poolDir)) cli('unmount', poolDir);
      const left = (await readMounts()).filter((x) => x.mountPoint.startsWith(`${root}/`)).map((x) => x.mountPoint);
      for (const x of left.sort((a, b) => b.length - a.length)) await lazyUnmount(x);
      await cp.stop();
      fs.rmSync(root, { recursive: true, force: true });
    }
  },
);

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('`dynamicfs mount` over the dead mount of a daemon killed with -9 returns once the new mount answers', async () => {
  const p = await makePool({ disks: 2 });
  try {
    const first = cliJson<{ pid: number }>('mount', p.pool, p.mnt);
    // Written and closed by another process: this one must not block on a mount it may have to kill.
    assert.equal(spawnSync('sh', ['-c', `printf kept > '${path.join(p.mnt, 'kept')}'`]).status, 0);
    process.kill(first.pid, 'SIGKILL');
    await eventually('the killed daemon is gone', () => (isAlive(first.pid) ? undefined : true));
    const again = cli('mount', p.pool, p.mnt);
    assert.equal(again.code, 0, again.stderr);
    // The very next call on the mount point is served (before, it failed with ENOTCONN for ~0.5 s).
    const r = spawnSync('cat', [path.join(p.mnt, 'kept')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'kept');
  } finally {
    await execAsync(process.execPath, [CLI, 'umount', p.pool]).catch(() => undefined);
    if (await isMounted(p.mnt)) await lazyUnmount(p.mnt);
    cleanup(p.root);
  }
});
