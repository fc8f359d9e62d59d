import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { DynamicFSPool } from '../../operator/src/api/pool.js';
import { ControlPlane } from '../helpers/control-plane.js';
import { csiClient } from '../helpers/csi-client.js';
import { CsiPlugin } from '../helpers/csi-env.js';
import { cli, eventually, freePort, httpGet, metricValue, tempDir } from '../helpers/env.js';
import { skipBecause } from '../helpers/skip.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const OPERATOR = path.join(repo, 'dist/operator/src/main.js');
const NODE = 'test-node';

let cp: ControlPlane | null = null;
let skipWhy: string | null = null;
const procs: ChildProcess[] = [];
let root = '';

function startProc(args: string[]): ChildProcess & { log: () => string } {
  let log = '';
  const p = spawn(process.execPath, [OPERATOR, ...args, '--kubeconfig', (cp as ControlPlane).kubeconfig, '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcess & { log: () => string };
  p.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  p.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  p.log = () => log;
  procs.push(p);
  return p;
}
const ports = new Map<string, number>();
const operator = (id: string) =>
  startProc(['run', '--identity', id, '--node-stale-seconds', '6', '--metrics-listen', `127.0.0.1:${ports.get(id)}`]);
let agentPort = 0;
// The test's directory is the only disk root: disks anywhere else are refused (the chart's diskPaths).
const agent = () =>
  startProc([
    'node',
    '--node-name',
    NODE,
    '--state-dir',
    path.join(root, 'state'),
    '--report-seconds',
    '1',
    '--metrics-listen',
    `127.0.0.1:${agentPort}`,
    '--disk-root',
    root,
  ]);

async function kill(p: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill(signal);
  await done;
}

function k(...args: string[]): string {
  return (cp as ControlPlane).kubectl(...args);
}
function pool(name: string): DynamicFSPool {
  return JSON.parse(k('get', 'dfp', name, '-o', 'json')) as DynamicFSPool;
}
function condition(p: DynamicFSPool, type: string) {
  return p.status?.conditions?.find((c) => c.type === type);
}
function apply(yaml: string): { code: number; out: string } {
  return (cp as ControlPlane).kubectlRun(['apply', '-f', '-'], yaml);
}

before(async () => {
  cp = await ControlPlane.start();
  if (!cp) skipWhy = 'kube-apiserver, etcd or kubectl is not built (test/fixtures/build needs Go and the module proxy)';
  if (skipWhy && process.env.CI) throw new Error(skipWhy);
  root = tempDir('dfs-op-');
});

after(async () => {
  for (const p of procs) await kill(p, 'SIGTERM').catch(() => undefined);
  // The node agent's engine daemons outlive it by design: stop them.
  const pools = path.join(root, 'state/pools');
  if (fs.existsSync(pools)) for (const d of fs.readdirSync(pools)) cli('unmount', path.join(pools, d));
  await cp?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

/** Disks are directories of one filesystem: each names its own failure domain unless `named` is false. */
const poolYaml = (name: string, disks: string[], extra = '', named = true) => `apiVersion: dynamicfs.io/v1alpha1
kind: DynamicFSPool
metadata:
  name: ${name}
spec:
  nodeName: ${NODE}
  redundancy: replication:2
  extentSize: 64Ki
  configRef: cfg
  disks:
${disks.map((d) => `    - path: ${d}\n      capacity: 64Mi${named ? `\n      failureDomain: ${path.basename(d)}` : ''}`).join('\n')}
${extra}`;

test('CRDs: examples apply; bad specs are refused by the API server with the field named', (t) => {
  if (skipWhy) return skipBecause(t, skipWhy);
  const examples = (cp as ControlPlane).kubectlRun(['apply', '--dry-run=server', '-f', path.join(repo, 'examples')]);
  assert.equal(examples.code, 0, examples.out);
  const refused: [string, string, RegExp][] = [
    ['bad policy', poolYaml('bad1', ['/d1', '/d2']).replace('replication:2', 'raid5'), /spec\.redundancy/],
    [
      'erasure wider than the disks',
      poolYaml('bad2', ['/d1', '/d2']).replace('replication:2', 'erasure:2+1'),
      /erasure k\+m needs at least k\+m disks/,
    ],
    [
      'unknown field',
      poolYaml('bad3', ['/d1', '/d2']).replace('  configRef: cfg', '  configRef: cfg\n  replicas: 3'),
      /unknown field "spec\.replicas"/,
    ],
    ['relative disk path', poolYaml('bad4', ['d1', '/d2']), /spec\.disks\[0\]\.path/],
    [
      'bad tier',
      poolYaml('bad5', ['/d1', '/d2']).replace('      capacity: 64Mi', '      tier: lukewarm\n      capacity: 64Mi'),
      /spec\.disks\[0\]\.tier/,
    ],
    ['bad quantity', poolYaml('bad6', ['/d1', '/d2']).replace('64Mi', 'lots'), /spec\.disks\[0\]\.capacity/],
    ['bad schedule', poolYaml('bad7', ['/d1', '/d2'], '  scrub:\n    schedule: "whenever"'), /spec\.scrub\.schedule/],
    [
      'config with an unknown key',
      'apiVersion: dynamicfs.io/v1alpha1\nkind: DynamicFSConfig\nmetadata: {name: badc}\nspec:\n  reliability:\n    rebuild_speed: 9\n',
      /unknown field "spec\.reliability\.rebuild_speed"/,
    ],
    [
      'config with a wrong type',
      'apiVersion: dynamicfs.io/v1alpha1\nkind: DynamicFSConfig\nmetadata: {name: badc}\nspec:\n  reliability:\n    auto_rebuild: "yes"\n',
      /spec\.reliability\.auto_rebuild/,
    ],
    [
      'config out of range',
      'apiVersion: dynamicfs.io/v1alpha1\nkind: DynamicFSConfig\nmetadata: {name: badc}\nspec:\n  reliability:\n    rebuild_concurrency: 0\n',
      /spec\.reliability\.rebuild_concurrency/,
    ],
  ];
  for (const [what, yaml, message] of refused) {
    const r = apply(yaml);
    assert.notEqual(r.code, 0, `${what} was accepted`);
    assert.match(r.out, message, `${what}: ${r.out}`);
  }
  assert.match(k('get', 'dfp'), /No resources found|^$/);
  // Immutable fields: nodeName and extentSize.
  assert.equal(apply(poolYaml('imm', ['/d1', '/d2'])).code, 0);
  assert.match(
    apply(poolYaml('imm', ['/d1', '/d2']).replace(`nodeName: ${NODE}`, 'nodeName: elsewhere')).out,
    /spec\.nodeName is immutable/,
  );
  assert.match(apply(poolYaml('imm', ['/d1', '/d2']).replace('64Ki', '128Ki')).out, /spec\.extentSize is immutable/);
  k('delete', 'dfp', 'imm', '--wait=false');
  (cp as ControlPlane).kubectlRun(['patch', 'dfp', 'imm', '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
});

test(
  'a pool becomes Ready on this node; disk failure, rebuild, scrubs, config changes, deletion protection, restarts and leader election',
  { timeout: 600_000 },
  async (t) => {
    if (skipWhy) return skipBecause(t, skipWhy);
    const disks = [1, 2, 3].map((i) => path.join(root, `disk${i}`));
    assert.equal(
      apply(
        'apiVersion: dynamicfs.io/v1alpha1\nkind: DynamicFSConfig\nmetadata: {name: cfg}\nspec:\n  preset: production\n  reliability:\n    auto_scrub: false\n    rebuild_bandwidth: 256KiB\n  monitoring:\n    log_level: info\n',
      ).code,
      0,
    );
    assert.equal(apply(poolYaml('p1', disks)).code, 0);
    agentPort = await freePort();
    ports.set('op-1', await freePort());
    ports.set('op-2', await freePort());
    const op1 = operator('op-1');
    const op2 = operator('op-2');
    let node = agent();
    try {
      await scenario(
        op1,
        op2,
        () => node,
        (n) => (node = n),
        disks,
      );
    } catch (err) {
      (err as Error).message +=
        `\n--- operator op-1:\n${op1.log().slice(-3000)}\n--- operator op-2:\n${op2.log().slice(-3000)}\n--- node agent:\n${node.log().slice(-4000)}`;
      throw err;
    }
  },
);

async function scenario(
  op1: ReturnType<typeof operator>,
  op2: ReturnType<typeof operator>,
  current: () => ReturnType<typeof agent>,
  replace: (n: ReturnType<typeof agent>) => void,
  disks: string[],
): Promise<void> {
  let node = current();

  // Ready, with every disk reported.
  k('wait', '--for=condition=Ready', 'dynamicfspool/p1', '--timeout=90s');
  let p = pool('p1');
  assert.equal(p.status?.disks?.filter((d) => d.health === 'healthy').length, 3);
  assert.ok(p.status?.disks?.every((d) => d.id && d.identity?.startsWith(p.status?.poolId ?? '?')));
  assert.equal(condition(p, 'Ready')?.observedGeneration, p.metadata.generation);
  assert.equal(condition(p, 'ConfigValid')?.status, 'True');
  assert.ok(p.metadata.finalizers?.includes('dynamicfs.io/pool-protection'));
  const table = k('get', 'dfp');
  assert.match(table, /NAME\s+NODE\s+READY\s+HEALTH\s+DISKS\s+CAPACITY\s+USED\s+AGE/);
  assert.match(table, new RegExp(`p1\\s+${NODE}\\s+True\\s+healthy\\s+3/3`));

  // The node's state is private: no other local user walks into a pool's directory or mount.
  for (const d of ['state', 'state/pools', 'state/mnt', 'state/config', 'state/pools/p1'])
    assert.equal(fs.statSync(path.join(root, d)).mode & 0o777, 0o700, `${d} is not 0700`);
  assert.equal(fs.statSync(path.join(root, 'state/config/p1.yaml')).mode & 0o777, 0o600);

  // A disk outside the node's disk roots (or in its state directory) is neither created nor added: the
  // status says why and Ready says which.
  const outside = `${root}-outside/d9`;
  const inState = path.join(root, 'state/d10');
  // Inside the root by name, outside it through a link: what mkdir -p would create is judged.
  fs.symlinkSync(`${root}-elsewhere`, path.join(root, 'link'));
  const viaLink = path.join(root, 'link/d11');
  assert.equal(apply(poolYaml('p1', [...disks, outside, inState, viaLink])).code, 0);
  p = await eventually(
    'the disks refused',
    () => {
      const q = pool('p1');
      return q.status?.disks?.filter((d) => d.health === 'refused').length === 3 && condition(q, 'Ready')?.reason === 'DiskRefused'
        ? q
        : undefined;
    },
    30_000,
  );
  assert.match(p.status?.disks?.find((d) => d.path === outside)?.reason ?? '', /outside the allowed disk roots/);
  assert.match(p.status?.disks?.find((d) => d.path === inState)?.reason ?? '', /state directory/);
  assert.match(
    p.status?.disks?.find((d) => d.path === viaLink)?.reason ?? '',
    /leads to .*-elsewhere\/d11: .*outside the allowed disk roots/,
  );
  assert.ok(
    !fs.existsSync(`${root}-outside`) && !fs.existsSync(inState) && !fs.existsSync(`${root}-elsewhere`),
    'the node agent created a refused disk directory',
  );
  assert.equal(apply(poolYaml('p1', disks)).code, 0);
  await eventually('PoolServing again', () => (condition(pool('p1'), 'Ready')?.reason === 'PoolServing' ? true : undefined), 30_000);
  p = pool('p1');

  // The node's endpoints aggregate its pools' daemons.
  const nm = (await httpGet(`http://127.0.0.1:${agentPort}/metrics`)).body;
  assert.match(nm, /dynamicfs_extents\{[^}]*pool="p1"/);
  assert.equal((await httpGet(`http://127.0.0.1:${agentPort}/readyz`)).status, 200);
  assert.equal((await httpGet(`http://127.0.0.1:${agentPort}/healthz`)).status, 200);

  // Exactly one operator leads.
  const lease = JSON.parse(k('get', 'lease', 'dynamicfs-operator', '-n', 'default', '-o', 'json')) as { spec: { holderIdentity: string } };
  assert.ok(['op-1', 'op-2'].includes(lease.spec.holderIdentity));
  const leader = lease.spec.holderIdentity === 'op-1' ? op1 : op2;
  const standby = leader === op1 ? op2 : op1;
  assert.doesNotMatch(standby.log(), /is the leader/);
  // Reconcile metrics on the leader; the standby reconciles nothing.
  const leaderId = lease.spec.holderIdentity;
  const standbyId = leaderId === 'op-1' ? 'op-2' : 'op-1';
  const lm = (await httpGet(`http://127.0.0.1:${ports.get(leaderId)}/metrics`)).body;
  assert.ok((metricValue(lm, 'dynamicfs_reconcile_total', { controller: 'pool', result: 'ok' }) ?? 0) > 0);
  assert.equal(metricValue(lm, 'dynamicfs_operator_leader'), 1);
  assert.ok(metricValue(lm, 'dynamicfs_workqueue_depth', { controller: 'pool' }) !== undefined);
  const sm = (await httpGet(`http://127.0.0.1:${ports.get(standbyId)}/metrics`)).body;
  assert.equal(metricValue(sm, 'dynamicfs_reconcile_total', { controller: 'pool', result: 'ok' }) ?? 0, 0);
  assert.equal(metricValue(sm, 'dynamicfs_operator_leader') ?? 0, 0);

  // Some data, then a disk fails: Degraded with a reason, a rebuild, back to fully protected.
  const poolDir = path.join(root, 'state/pools/p1');
  const mnt = path.join(root, 'state/mnt/p1');
  for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(mnt, `f${i}`), Buffer.alloc(300_000, i + 1));
  const diskId = p.status?.disks?.[0].id as string;
  assert.equal(cli('set-disk-health', poolDir, diskId, 'failed').code, 0);
  await eventually(
    'Degraded=True DiskFailed',
    () => (condition(pool('p1'), 'Degraded')?.reason === 'DiskFailed' ? true : undefined),
    30_000,
  );
  // The rebuild is throttled (256 KiB/s) so that it shows while it runs.
  await eventually('Rebuilding=True', () => (condition(pool('p1'), 'Rebuilding')?.status === 'True' ? true : undefined), 30_000);
  p = await eventually(
    'the rebuild to be acknowledged',
    () => {
      const q = pool('p1');
      return q.status?.acknowledged?.rebuildWanted && q.status.extents?.degraded === 0 ? q : undefined;
    },
    60_000,
  );
  assert.equal(condition(p, 'Ready')?.status, 'True');
  await eventually('Rebuilding=False', () => (condition(pool('p1'), 'Rebuilding')?.status === 'False' ? true : undefined), 20_000);
  // The failed disk leaves spec.disks: it stays until the removal is confirmed, then it is drained and removed.
  const failedPath = p.status?.disks?.find((d) => d.id === diskId)?.path as string;
  const rest = disks.filter((d) => d !== failedPath);
  assert.equal(apply(poolYaml('p1', rest)).code, 0);
  await eventually(
    'RemovalNotConfirmed',
    () => (condition(pool('p1'), 'Ready')?.reason === 'RemovalNotConfirmed' ? true : undefined),
    30_000,
  );
  assert.ok(
    pool('p1').status?.disks?.some((d) => d.path === failedPath),
    'an unconfirmed removal went ahead',
  );
  assert.equal(apply(poolYaml('p1', rest, `  confirmDiskRemoval:\n    - ${failedPath}`)).code, 0);
  p = await eventually(
    'the disk removed and the pool healthy again',
    () => {
      const q = pool('p1');
      return !q.status?.disks?.some((d) => d.path === failedPath) && condition(q, 'Degraded')?.status === 'False' ? q : undefined;
    },
    60_000,
  );
  assert.equal(condition(p, 'Ready')?.reason, 'PoolServing');
  assert.equal(p.status?.diskCount, '2/2');
  for (let i = 0; i < 4; i++) assert.ok(fs.readFileSync(path.join(mnt, `f${i}`)).equals(Buffer.alloc(300_000, i + 1)));
  const events = k('get', 'events.events.k8s.io', '-n', 'default', '-o', 'json');
  assert.match(events, /"reason": "DiskFailed"/);
  assert.match(events, /"reason": "RebuildStarted"/);
  assert.match(events, /"reason": "RebuildFinished"/);

  // A requested scrub runs once and reports.
  k('patch', 'dfp', 'p1', '--type=merge', '-p', '{"spec":{"requests":{"scrub":"s1"}}}');
  p = await eventually('scrub s1 acknowledged', () => (pool('p1').status?.acknowledged?.scrub === 's1' ? pool('p1') : undefined), 60_000);
  p = await eventually('the scrub reported', () => (pool('p1').status?.lastScrub?.time ? pool('p1') : undefined), 20_000);
  assert.equal(p.status?.lastScrub?.result, 'clean');
  await eventually(
    'scrub events',
    () => {
      const ev = k('get', 'events.events.k8s.io', '-n', 'default', '-o', 'json');
      return /"reason": "ScrubStarted"/.test(ev) && /"reason": "ScrubFinished"/.test(ev) ? true : undefined;
    },
    20_000,
  );
  // A scheduled scrub (every 4 s) runs and is acknowledged.
  k('patch', 'dfp', 'p1', '--type=merge', '-p', '{"spec":{"scrub":{"schedule":"*/4 * * * * *"}}}');
  await eventually('a scheduled scrub', () => pool('p1').status?.acknowledged?.scheduledScrub, 60_000);
  k('patch', 'dfp', 'p1', '--type=json', '-p', '[{"op":"remove","path":"/spec/scrub"}]');

  // A changed DynamicFSConfig reaches the engine.
  k('patch', 'dfc', 'cfg', '--type=merge', '-p', '{"spec":{"monitoring":{"log_level":"debug"}}}');
  await eventually(
    'log level debug in the pool',
    () => {
      const shown = JSON.parse(cli('config', 'show', '--pool', poolDir, '--format', 'json').stdout) as {
        monitoring: { log_level: string };
      };
      return shown.monitoring.log_level === 'debug' ? true : undefined;
    },
    30_000,
  );
  assert.equal((JSON.parse(k('get', 'dfc', 'cfg', '-o', 'json')) as { status: { pools: string[] } }).status.pools[0], 'p1');

  // The disks' names taken away: the node finds them on one device. With shared domains allowed (tests
  // and demos), the pool is Degraded with a standing warning; named again, it is healthy.
  const remaining = (pool('p1').status?.disks ?? []).map((d) => d.path);
  k('patch', 'dfc', 'cfg', '--type=merge', '-p', '{"spec":{"reliability":{"allow_shared_failure_domains":true}}}');
  assert.equal(apply(poolYaml('p1', remaining, '', false)).code, 0);
  p = await eventually(
    'Degraded=True SharedFailureDomains',
    () => {
      const q = pool('p1');
      return condition(q, 'Degraded')?.reason === 'SharedFailureDomains' ? q : undefined;
    },
    30_000,
  );
  assert.match(
    condition(p, 'Degraded')?.message ?? '',
    /redundancy replication:2 is illusory: it needs 2 failure domains and the pool has 1/,
  );
  assert.equal(p.status?.failureDomains?.count, 1);
  assert.equal(new Set(p.status?.disks?.map((d) => d.failureDomain)).size, 1);
  assert.equal(condition(p, 'Ready')?.status, 'True');
  assert.equal(apply(poolYaml('p1', remaining)).code, 0);
  await eventually(
    'Degraded=False once named apart',
    () => (condition(pool('p1'), 'Degraded')?.status === 'False' ? true : undefined),
    30_000,
  );
  k('patch', 'dfc', 'cfg', '--type=merge', '-p', '{"spec":{"reliability":{"allow_shared_failure_domains":false}}}');

  // The node side stops reporting: Ready turns Unknown; it comes back and converges.
  await kill(node);
  await eventually('Ready=Unknown', () => (condition(pool('p1'), 'Ready')?.status === 'Unknown' ? true : undefined), 30_000);
  node = agent();
  replace(node);
  k('wait', '--for=condition=Ready', 'dynamicfspool/p1', '--timeout=60s');

  // The leader dies mid-way: the standby takes over and answers a new request.
  await kill(leader);
  k('patch', 'dfp', 'p1', '--type=merge', '-p', '{"spec":{"requests":{"scrub":"s2"}}}');
  await eventually('the standby to lead', () => (/is the leader/.test(standby.log()) ? true : undefined), 40_000);
  await eventually('scrub s2 acknowledged', () => (pool('p1').status?.acknowledged?.scrub === 's2' ? true : undefined), 60_000);

  // Deletion waits while the pool holds volumes. The volume comes from the CSI plugin, which finds the
  // pools the node agent made in its state directory.
  const csi = await CsiPlugin.start(path.join(root, 'csi.sock'), {}, path.join(root, 'kubelet'), NODE, [
    '--pools-dir',
    path.join(root, 'state/pools'),
  ]);
  procs.push(csi.child);
  const client = csiClient(path.join(root, 'csi.sock'));
  const created = (await client.controller.CreateVolume({
    name: 'pvc-1',
    capacity_range: { required_bytes: 1 << 20 },
    parameters: { pool: 'p1' },
    volume_capabilities: [{ mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
  })) as { volume: { volume_id: string; accessible_topology: { segments: Record<string, string> }[] } };
  assert.equal(created.volume.volume_id, 'p1:pvc-1');
  assert.deepEqual(created.volume.accessible_topology[0].segments, { 'topology.dynamicfs.io/node': NODE });
  await eventually('the volume count', () => ((pool('p1').status?.volumes ?? 0) > 0 ? true : undefined), 20_000);
  k('delete', 'dfp', 'p1', '--wait=false');
  await eventually('DeletionBlocked', () => (condition(pool('p1'), 'Ready')?.reason === 'DeletionBlocked' ? true : undefined), 20_000);
  await client.controller.DeleteVolume({ volume_id: 'p1:pvc-1' });
  client.close();
  await eventually(
    'the pool to be deleted',
    () => ((cp as ControlPlane).kubectlRun(['get', 'dfp', 'p1']).code !== 0 ? true : undefined),
    30_000,
  );
}
