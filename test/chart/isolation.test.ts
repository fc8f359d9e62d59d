import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { controlPlaneForFile, type ControlPlane } from '../helpers/control-plane.js';
import { eventually } from '../helpers/env.js';
import { helm } from '../helpers/helm.js';
import { skipBecause } from '../helpers/skip.js';

// Issue 16, the chart's part: per-component accounts with least privilege, and pool disks confined to
// the installation's disk roots, both checked by a real kube-apiserver (RBAC authorizer, CEL admission).

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const CHART = path.join(repo, 'charts/dynamicfs');
const NS = 'dynamicfs';

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  [k: string]: unknown;
}

function render(sets: string[] = []): K8sObject[] {
  const r = helm(['template', 'dfs', CHART, '--namespace', NS, ...sets.flatMap((s) => ['--set', s])]);
  assert.equal(r.code, 0, r.out);
  return parseAllDocuments(r.out)
    .map((d) => d.toJS() as K8sObject)
    .filter((o) => o && o.kind);
}

const accountOf = (objs: K8sObject[], kind: string, name: string): string => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name} is not rendered`);
  return (o.spec as { template: { spec: { serviceAccountName: string } } }).template.spec.serviceAccountName;
};

const controlPlane = controlPlaneForFile((c) => c.kubectl('create', 'namespace', NS));

function apply(c: ControlPlane, objs: K8sObject[]): void {
  const out = c.kubectlRun(['apply', '-f', '-'], objs.map((o) => stringify(o)).join('---\n'));
  assert.equal(out.code, 0, out.out);
}

type Check = [verb: string, resource: string, scope: { ns?: string; sub?: string }, allowed: boolean];

test('RBAC: the engine, CSI and operator accounts the workloads run as may do what they need and nothing of the others (kubectl auth can-i)', (t) => {
  const cp = controlPlane();
  if (!cp) return skipBecause(t, 'kube-apiserver, etcd or kubectl is not built (test/fixtures/build needs Go and the module proxy)');
  const c = cp;
  const objs = render();
  apply(
    c,
    objs.filter((o) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind)),
  );
  // The accounts the pods really use, not names assumed here: a shared account would fail below.
  const accounts = {
    engine: accountOf(objs, 'DaemonSet', 'dfs-engine'),
    csi: accountOf(objs, 'DaemonSet', 'dfs-csi'),
    operator: accountOf(objs, 'Deployment', 'dfs-operator'),
  };
  assert.equal(new Set(Object.values(accounts)).size, 3, `components share an account: ${JSON.stringify(accounts)}`);
  const POOLS = 'dynamicfspools.dynamicfs.io';
  const CONFIGS = 'dynamicfsconfigs.dynamicfs.io';
  const checks: Record<keyof typeof accounts, Check[]> = {
    engine: [
      ['list', POOLS, {}, true],
      ['watch', POOLS, {}, true],
      ['get', CONFIGS, {}, true],
      ['patch', POOLS, { sub: 'status' }, true],
      ['create', 'events.events.k8s.io', { ns: NS }, true],
      // The privileged engine pod must not make or remove volumes, nor touch what the CSI side owns.
      ['create', 'persistentvolumes', {}, false],
      ['delete', 'persistentvolumes', {}, false],
      ['patch', 'persistentvolumes', {}, false],
      ['update', 'persistentvolumeclaims', { ns: 'default' }, false],
      ['get', 'nodes', {}, false],
      ['create', 'csistoragecapacities.storage.k8s.io', { ns: NS }, false],
      ['list', 'storageclasses.storage.k8s.io', {}, false],
      // Pools are the user's: the node writes status only.
      ['patch', POOLS, {}, false],
      ['create', POOLS, {}, false],
      ['delete', POOLS, {}, false],
      ['patch', CONFIGS, { sub: 'status' }, false],
      ['create', 'events.events.k8s.io', { ns: 'default' }, false],
      ['get', 'secrets', { ns: NS }, false],
    ],
    csi: [
      ['create', 'persistentvolumes', {}, true],
      ['delete', 'persistentvolumes', {}, true],
      ['patch', 'persistentvolumes', {}, true],
      ['watch', 'persistentvolumeclaims', { ns: 'default' }, true],
      ['update', 'persistentvolumeclaims', { ns: 'default' }, true],
      ['list', 'storageclasses.storage.k8s.io', {}, true],
      ['create', 'events', { ns: 'default' }, true],
      ['create', 'csistoragecapacities.storage.k8s.io', { ns: NS }, true],
      ['delete', 'csistoragecapacities.storage.k8s.io', { ns: NS }, true],
      // Nothing on pools: a compromised CSI pod can neither read nor rewrite them.
      ['get', POOLS, {}, false],
      ['list', POOLS, {}, false],
      ['patch', POOLS, { sub: 'status' }, false],
      ['get', CONFIGS, {}, false],
      ['create', 'csistoragecapacities.storage.k8s.io', { ns: 'default' }, false],
      ['update', 'persistentvolumes', {}, false],
      ['get', 'secrets', { ns: 'default' }, false],
      ['create', 'pods', { ns: 'default' }, false],
      ['update', 'nodes', {}, false],
    ],
    operator: [
      ['watch', POOLS, {}, true],
      ['patch', POOLS, {}, true],
      ['patch', POOLS, { sub: 'status' }, true],
      ['list', CONFIGS, {}, true],
      ['patch', CONFIGS, { sub: 'status' }, true],
      ['update', 'leases.coordination.k8s.io', { ns: NS }, true],
      ['create', 'events.events.k8s.io', { ns: NS }, true],
      ['create', 'persistentvolumes', {}, false],
      ['delete', POOLS, {}, false],
      ['create', POOLS, {}, false],
      ['patch', CONFIGS, {}, false],
      ['update', POOLS, { sub: 'finalizers' }, false],
      ['update', 'leases.coordination.k8s.io', { ns: 'default' }, false],
      ['get', 'secrets', { ns: NS }, false],
    ],
  };
  const wrong: string[] = [];
  for (const [component, list] of Object.entries(checks) as [keyof typeof accounts, Check[]][]) {
    for (const [verb, resource, scope, allowed] of list) {
      const args = ['auth', 'can-i', `--as=system:serviceaccount:${NS}:${accounts[component]}`, verb, resource];
      if (scope.sub) args.push(`--subresource=${scope.sub}`);
      args.push(...(scope.ns ? ['--namespace', scope.ns] : []));
      // 'yes' or 'no' on a line of its own (exit code 1 for no, possibly after a warning).
      const answer = /^(yes|no)$/m.exec(c.kubectlRun(args).out)?.[1];
      if (answer !== (allowed ? 'yes' : 'no'))
        wrong.push(
          `${component} (${accounts[component]}): ${verb} ${resource}${scope.sub ? `/${scope.sub}` : ''}${scope.ns ? ` in ${scope.ns}` : ''}: ${answer}, want ${allowed ? 'yes' : 'no'}`,
        );
    }
  }
  assert.deepEqual(wrong, []);
});

const pool = (name: string, disks: string[]) =>
  stringify({
    apiVersion: 'dynamicfs.io/v1alpha1',
    kind: 'DynamicFSPool',
    metadata: { name },
    spec: { nodeName: 'n1', disks: disks.map((p) => ({ path: p })) },
  });

test('admission: DynamicFSPool disks must be a diskPaths root or below one; the policy names the roots, and pools admitted earlier stay editable', async (t) => {
  const cp = controlPlane();
  if (!cp) return skipBecause(t, 'kube-apiserver, etcd or kubectl is not built (test/fixtures/build needs Go and the module proxy)');
  const c = cp;
  // A pool from before the policy (or before the roots narrowed), outside the roots.
  assert.equal(c.kubectlRun(['create', '-f', '-'], pool('legacy', ['/srv/legacy'])).code, 0);
  const objs = render(['diskPaths={/mnt/disks,/data/dfs}']);
  const policy = objs.filter((o) => o.kind.startsWith('ValidatingAdmissionPolicy'));
  assert.deepEqual(policy.map((o) => o.kind).sort(), ['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
  apply(c, policy);
  const ROOTS = /diskPaths: \/mnt\/disks, \/data\/dfs/;
  // A policy takes a moment to reach the admission plugin: wait until it refuses.
  await eventually(
    'the admission policy to refuse a disk outside diskPaths',
    () => {
      const r = c.kubectlRun(['create', '--dry-run=server', '-f', '-'], pool('probe', ['/srv/other']));
      return r.code !== 0 && /outside the disk roots/.test(r.out) ? true : undefined;
    },
    60_000,
  );
  // (Its type-checking status is written by kube-controller-manager, not running here; an expression
  // that failed to compile would refuse every pool, the accepted ones below included.)

  const refused: [string, RegExp][] = [
    ['/', /disk path must not be '\/'/], // the CRD's rules come first
    ['/var/lib/kubelet/pods', /must not be in or at a system directory/],
    ['/mnt/disks/../etc', /must be normalized/],
    ['/srv/other', ROOTS],
    ['/tmp/d1', ROOTS], // fine for the CRD, not a root of this installation
    ['/mnt/disks2', ROOTS], // a prefix of the text, not a directory below the root
    ['/mnt', /nor be a shared parent itself/],
    ['/data', ROOTS], // a parent of a root
  ];
  for (const [disk, message] of refused) {
    const r = c.kubectlRun(['create', '-f', '-'], pool('bad', ['/mnt/disks/ok', disk]));
    assert.notEqual(r.code, 0, `a pool with disk ${disk} was accepted`);
    assert.match(r.out, message, `${disk}: ${r.out}`);
  }
  const outside = c.kubectlRun(['create', '-f', '-'], pool('bad', ['/srv/other']));
  assert.match(
    outside.out,
    /spec\.disks\[\]\.path \/srv\/other is outside the disk roots of this installation \(diskPaths: \/mnt\/disks, \/data\/dfs\)/,
  );

  for (const [name, disks] of [
    ['good', ['/mnt/disks/d1', '/mnt/disks/d2']],
    ['root', ['/data/dfs']],
  ] as const) {
    const r = c.kubectlRun(['create', '-f', '-'], pool(name, [...disks]));
    assert.equal(r.code, 0, `${disks.join(', ')}: ${r.out}`);
  }
  // Updates: a disk added outside the roots is refused; one inside is fine.
  const add = (name: string, disk: string) =>
    c.kubectlRun([
      'patch',
      'dynamicfspool',
      name,
      '--type=json',
      '-p',
      JSON.stringify([{ op: 'add', path: '/spec/disks/-', value: { path: disk } }]),
    ]);
  assert.match(add('good', '/srv/x').out, ROOTS);
  assert.equal(add('good', '/data/dfs/d3').code, 0);
  // The legacy pool keeps its disk: editing it (the operator's finalizer patch is such an edit) still
  // works, adding another disk outside the roots does not.
  const label = c.kubectlRun([
    'patch',
    'dynamicfspool',
    'legacy',
    '--type=merge',
    '-p',
    '{"metadata":{"finalizers":["dynamicfs.io/test"]}}',
  ]);
  assert.equal(label.code, 0, label.out);
  assert.match(add('legacy', '/srv/legacy2').out, ROOTS);
  assert.equal(add('legacy', '/mnt/disks/new').code, 0);
  assert.equal(c.kubectlRun(['patch', 'dynamicfspool', 'legacy', '--type=merge', '-p', '{"metadata":{"finalizers":null}}']).code, 0);
});
