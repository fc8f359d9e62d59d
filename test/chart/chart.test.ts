import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { RUNBOOKS } from '../../engine/report/issues.js';
import { SYSTEM_DIRS } from '../../operator/src/api/pool.js';
import { controlPlaneForFile } from '../helpers/control-plane.js';
import { helm } from '../helpers/helm.js';
import { skipBecause } from '../helpers/skip.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const CHART = path.join(repo, 'charts/dynamicfs');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  [k: string]: unknown;
}

function render(sets: string[] = []): K8sObject[] {
  const r = helm(['template', 'dfs', CHART, '--namespace', 'dynamicfs', ...sets.flatMap((s) => ['--set', s])]);
  assert.equal(r.code, 0, r.out);
  return parseAllDocuments(r.out)
    .map((d) => d.toJS() as K8sObject)
    .filter((o) => o && o.kind);
}
const find = (objs: K8sObject[], kind: string, name?: string) =>
  objs.find((o) => o.kind === kind && (!name || o.metadata.name === name)) as K8sObject;
type Container = {
  name: string;
  args?: string[];
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; mountPropagation?: string }[];
  livenessProbe?: { httpGet?: { path: string } };
  readinessProbe?: { httpGet?: { path: string } };
};
const podSpec = (o: K8sObject) =>
  (o.spec as { template: { spec: { containers: Container[]; serviceAccountName?: string; securityContext?: Record<string, unknown> } } })
    .template.spec;
const argsOf = (objs: K8sObject[], daemonSet: string, container: string) =>
  podSpec(find(objs, 'DaemonSet', daemonSet)).containers.find((c) => c.name === container)?.args ?? [];
/** The values of every `flag value` pair of `flag` in args. */
const flagValues = (args: string[], flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));

/** helm template that must fail, with its message. */
function refused(sets: string[], message: RegExp): void {
  const r = helm(['template', 'dfs', CHART, ...sets.flatMap((s) => ['--set', s])]);
  assert.notEqual(r.code, 0, `${sets.join(' ')} was accepted`);
  assert.match(r.out, message, `${sets.join(' ')}: ${r.out}`);
}

const EPHEMERAL = [
  'csi.ephemeral.enabled=true',
  'csi.ephemeral.maxSize=2Gi',
  'csi.ephemeral.defaultSize=64Mi',
  'csi.ephemeral.redundancy={replication:2,erasure:4+2}',
  'csi.ephemeral.pools={fast,bulk}',
  'csi.ephemeral.tiers={hot}',
  'csi.allowedMountOptions={suid,dev}',
  'storageClasses[0].name=apps',
  'storageClasses[0].mountOptions={nosuid,dev,exec,noatime}',
  'storageClasses[1].name=plain',
];
const MONITORING = [
  'monitoring.serviceMonitor.enabled=true',
  'monitoring.serviceMonitor.force=true',
  'monitoring.prometheusRule.enabled=true',
  'monitoring.prometheusRule.force=true',
  'monitoring.grafanaDashboard.enabled=true',
];

test('helm lint --strict passes for the default values and the monitoring values', () => {
  for (const sets of [
    [],
    MONITORING,
    ['node.updateStrategy=RollingUpdate', 'operator.replicas=3'],
    EPHEMERAL,
    ['admissionPolicy.enabled=false'],
  ]) {
    const r = helm(['lint', '--strict', CHART, ...sets.flatMap((s) => ['--set', s])]);
    assert.equal(r.code, 0, r.out);
  }
});

test("the chart's CRDs are crds/ byte for byte", () => {
  for (const f of fs.readdirSync(path.join(repo, 'crds'))) {
    assert.equal(
      fs.readFileSync(path.join(CHART, 'crds', f), 'utf8'),
      fs.readFileSync(path.join(repo, 'crds', f), 'utf8'),
      `charts/dynamicfs/crds/${f} differs from crds/${f}`,
    );
  }
  assert.deepEqual(fs.readdirSync(path.join(CHART, 'crds')).sort(), fs.readdirSync(path.join(repo, 'crds')).sort());
});

test('rendered objects: hardened operator, engine OnDelete with Bidirectional only where mounts reach kubelet, CSIDriver, StorageClasses, probes', () => {
  const objs = render();
  const op = podSpec(find(objs, 'Deployment'));
  assert.equal(op.securityContext?.runAsNonRoot, true);
  assert.deepEqual(op.containers[0].securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  });
  assert.ok(find(objs, 'PodDisruptionBudget'));
  const engine = find(objs, 'DaemonSet', 'dfs-engine');
  assert.deepEqual((engine.spec as { updateStrategy: unknown }).updateStrategy, { type: 'OnDelete' });
  const e = podSpec(engine).containers[0];
  assert.equal(e.livenessProbe?.httpGet?.path, '/healthz');
  assert.equal(e.readinessProbe?.httpGet?.path, '/readyz');
  const bidirectional = objs
    .filter((o) => o.kind === 'DaemonSet')
    .flatMap((o) =>
      podSpec(o).containers.flatMap((c) =>
        (c.volumeMounts ?? [])
          .filter((m) => m.mountPropagation === 'Bidirectional')
          .map((m) => `${o.metadata.name}/${c.name}:${m.mountPath}`),
      ),
    );
  assert.deepEqual(bidirectional.sort(), [
    'dfs-csi/plugin:/var/lib/kubelet',
    'dfs-engine/engine:/var/lib/dynamicfs',
    'dfs-engine/engine:/var/lib/kubelet',
  ]);
  const csi = podSpec(find(objs, 'DaemonSet', 'dfs-csi'));
  assert.deepEqual(
    csi.containers.map((c) => c.name),
    ['plugin', 'node-driver-registrar', 'liveness-probe', 'csi-provisioner'],
  );
  assert.ok(JSON.stringify(csi).includes('--node-deployment=true'));
  const driver = find(objs, 'CSIDriver');
  // Both modes always (the field is immutable: an upgrade or enabling inline volumes later must not
  // need a new object); the plugin refuses inline volumes unless enabled (no --ephemeral below).
  assert.deepEqual(driver.spec, {
    attachRequired: false,
    podInfoOnMount: true,
    storageCapacity: true,
    fsGroupPolicy: 'File',
    volumeLifecycleModes: ['Persistent', 'Ephemeral'],
  });
  const scs = objs.filter((o) => o.kind === 'StorageClass');
  assert.equal(scs.length, 2);
  for (const sc of scs) {
    assert.equal(sc.volumeBindingMode, 'WaitForFirstConsumer');
    assert.equal(sc.allowVolumeExpansion, true);
    assert.equal(sc.provisioner, 'csi.dynamicfs.io');
    assert.deepEqual(sc.mountOptions, ['nosuid', 'nodev']);
  }
  // One account per component, none shared (the privileged engine must not hold the provisioner's rights).
  assert.deepEqual(
    [podSpec(engine).serviceAccountName, csi.serviceAccountName, op.serviceAccountName],
    ['dfs-engine', 'dfs-csi', 'dfs-operator'],
  );
  assert.deepEqual(
    objs
      .filter((o) => o.kind === 'ServiceAccount')
      .map((o) => o.metadata.name)
      .sort(),
    ['dfs-csi', 'dfs-engine', 'dfs-operator'],
  );
  // The engine gets its disk roots; the plugin its ephemeral limits, without --ephemeral.
  assert.deepEqual(flagValues(argsOf(objs, 'dfs-engine', 'engine'), '--disk-root'), ['/mnt/disks']);
  const plugin = argsOf(objs, 'dfs-csi', 'plugin');
  assert.ok(!plugin.includes('--ephemeral'), plugin.join(' '));
  assert.deepEqual([flagValues(plugin, '--ephemeral-max-size'), flagValues(plugin, '--ephemeral-default-size')], [['1Gi'], ['100Mi']]);
  for (const flag of ['--ephemeral-redundancy', '--ephemeral-pool', '--ephemeral-tier', '--allow-mount-option'])
    assert.deepEqual(flagValues(plugin, flag), [], flag);
  // The disk admission policy is on by default.
  assert.equal(find(objs, 'ValidatingAdmissionPolicyBinding', 'dfs-disk-paths')?.spec?.policyName, 'dfs-disk-paths');
  // Images are pinned, never :latest.
  for (const img of JSON.stringify(objs).match(/"image":"[^"]+"/g) ?? []) assert.doesNotMatch(img, /:latest"|"image":"[^:]+"$/);
  // Monitoring objects only when asked.
  assert.ok(!objs.some((o) => o.kind === 'ServiceMonitor' || o.kind === 'PrometheusRule'));
});

test('monitoring: ServiceMonitor, PrometheusRule alerts linking to runbooks that exist, dashboard; each alert can be switched off', () => {
  const objs = render(MONITORING);
  const sm = find(objs, 'ServiceMonitor');
  assert.equal((sm.spec as { endpoints: { path: string }[] }).endpoints[0].path, '/metrics');
  const rules = (
    find(objs, 'PrometheusRule').spec as { groups: { rules: { alert: string; expr: string; annotations: { runbook_url: string } }[] }[] }
  ).groups[0].rules;
  assert.deepEqual(rules.map((r) => r.alert).sort(), [
    'DynamicFSCapacityCritical',
    'DynamicFSCapacityHigh',
    'DynamicFSDiskFailed',
    'DynamicFSExtentsDegraded',
    'DynamicFSExtentsUnrecoverable',
    'DynamicFSRebuildStalled',
    'DynamicFSScrubOverdue',
  ]);
  const runbooks = new Set(Object.values(RUNBOOKS).map((r) => path.basename(r)));
  for (const r of rules)
    assert.ok(
      runbooks.has(path.basename(r.annotations.runbook_url)),
      `${r.alert} links to a runbook that does not exist: ${r.annotations.runbook_url}`,
    );
  assert.match(
    rules.find((r) => r.alert === 'DynamicFSScrubOverdue')?.expr ?? '',
    /dynamicfs_scrub_last_success_timestamp_seconds > 691200/,
  );
  assert.ok(find(objs, 'ConfigMap', 'dfs-dashboard'));
  const fewer = render([
    ...MONITORING,
    'monitoring.prometheusRule.alerts.diskFailed.enabled=false',
    'monitoring.prometheusRule.alerts.capacityHigh.percent=70',
  ]);
  const r2 = (find(fewer, 'PrometheusRule').spec as { groups: { rules: { alert: string; expr: string }[] }[] }).groups[0].rules;
  assert.ok(!r2.some((r) => r.alert === 'DynamicFSDiskFailed'));
  assert.match(r2.find((r) => r.alert === 'DynamicFSCapacityHigh')?.expr ?? '', /> 70$/);
  // Without the CRD and without force, nothing is rendered.
  assert.ok(!render(['monitoring.serviceMonitor.enabled=true']).some((o) => o.kind === 'ServiceMonitor'));
});

test('ephemeral volumes and mount options: CSIDriver modes, plugin flags, StorageClass mountOptions', () => {
  const objs = render(EPHEMERAL);
  assert.deepEqual(find(objs, 'CSIDriver').spec?.volumeLifecycleModes, ['Persistent', 'Ephemeral']);
  const plugin = argsOf(objs, 'dfs-csi', 'plugin');
  assert.equal(plugin.filter((a) => a === '--ephemeral').length, 1);
  assert.deepEqual(flagValues(plugin, '--ephemeral-max-size'), ['2Gi']);
  assert.deepEqual(flagValues(plugin, '--ephemeral-default-size'), ['64Mi']);
  assert.deepEqual(flagValues(plugin, '--ephemeral-redundancy'), ['replication:2', 'erasure:4+2']);
  assert.deepEqual(flagValues(plugin, '--ephemeral-pool'), ['fast', 'bulk']);
  assert.deepEqual(flagValues(plugin, '--ephemeral-tier'), ['hot']);
  assert.deepEqual(flagValues(plugin, '--allow-mount-option'), ['suid', 'dev']);
  assert.deepEqual(find(objs, 'StorageClass', 'apps').mountOptions, ['nosuid', 'dev', 'exec', 'noatime']);
  assert.deepEqual(find(objs, 'StorageClass', 'plain').mountOptions, ['nosuid', 'nodev']);
  const engine = render(['diskPaths={/mnt/disks,/srv/dynamicfs}']);
  assert.deepEqual(flagValues(argsOf(engine, 'dfs-engine', 'engine'), '--disk-root'), ['/mnt/disks', '/srv/dynamicfs']);
  assert.deepEqual(
    JSON.parse(
      (find(engine, 'ValidatingAdmissionPolicy').spec as { variables: { name: string; expression: string }[] }).variables.find(
        (v) => v.name === 'roots',
      )?.expression ?? '',
    ),
    ['/mnt/disks', '/srv/dynamicfs'],
  );
});

test('cross-field values the templates refuse: mount options not allowed or contradicting, disk roots in system or kubelet/state directories, example disks outside the roots, Kubernetes < 1.30', () => {
  const sc = (...opts: string[]) => ['storageClasses[0].name=x', `storageClasses[0].mountOptions={${opts.join(',')}}`];
  for (const opt of ['suid', 'dev']) {
    refused(sc('noatime', opt), new RegExp(`storageClasses x: mount option ${opt} is not allowed; list it in csi.allowedMountOptions`));
    assert.equal(
      helm(['template', 'dfs', CHART, ...[...sc(opt), `csi.allowedMountOptions={${opt}}`].flatMap((s) => ['--set', s])]).code,
      0,
      `${opt} listed in csi.allowedMountOptions is refused`,
    );
  }
  refused([...sc('nosuid', 'suid'), 'csi.allowedMountOptions={suid}'], /mount options nosuid and suid contradict each other/);
  refused(sc('ro', 'rw'), /mount options ro and rw contradict each other/);
  refused(sc('bind'), /mountOptions\/0': value must be one of 'ro', 'rw', 'nosuid'/);
  refused(['csi.allowedMountOptions={exec}'], /allowedMountOptions\/0': value must be one of 'suid', 'dev'/);
  // Every directory the CRD refuses disks in is refused as a root too (the two lists must agree).
  for (const dir of [...SYSTEM_DIRS, ...SYSTEM_DIRS.map((d) => `${d}/disks`), '/var', '/var/lib'])
    refused([`diskPaths={${dir}}`], /diskPaths: \S+ is a system directory/);
  for (const dir of ['/', '/mnt/disks/', '/mnt/../etc', '/mnt//disks', 'mnt/disks'])
    refused([`diskPaths={${dir}}`], /diskPaths\/0': '[^']*' does not match pattern/);
  refused(['kubeletDir=/mnt/disks/kubelet'], /diskPaths: \/mnt\/disks overlaps \/mnt\/disks\/kubelet \(kubeletDir or stateDir\)/);
  refused(['stateDir=/srv', 'diskPaths={/srv/disks}'], /diskPaths: \/srv\/disks overlaps \/srv/);
  refused(
    ['examplePools[0].name=p', 'examplePools[0].nodeName=n1', 'examplePools[0].disks={/mnt/disks/d1,/mnt/disks2}'],
    /examplePools p: disk \/mnt\/disks2 is not in diskPaths \(\/mnt\/disks\)/,
  );
  // The chart needs Kubernetes 1.30 (ValidatingAdmissionPolicy v1, CRD validation ratcheting).
  const old = helm(['template', 'dfs', CHART, '--kube-version', '1.29.0']);
  assert.notEqual(old.code, 0);
  assert.match(old.out, /requires kubeVersion: >=1\.30\.0-0 which is incompatible with Kubernetes v1\.29\.0/);
  const off = helm(['template', 'dfs', CHART, '--set', 'admissionPolicy.enabled=false']);
  assert.equal(off.code, 0, off.out);
  assert.doesNotMatch(off.out, /ValidatingAdmissionPolicy/);
});

/** Golden renders: a chart change shows up as a diff to review (UPDATE_GOLDEN=1 rewrites them). */
const GOLDEN: Record<string, string[]> = {
  'default.yaml': [],
  'monitoring.yaml': MONITORING,
  'custom.yaml': [
    'kubeletDir=/var/lib/k0s/kubelet',
    'node.updateStrategy=RollingUpdate',
    'operator.replicas=3',
    'storageClasses[0].name=fast',
    'storageClasses[0].parameters.tier=hot',
    'diskPaths={/mnt/disks,/srv/dynamicfs}',
    'examplePools[0].name=p',
    'examplePools[0].nodeName=n1',
    'examplePools[0].disks={/mnt/disks/d1,/srv/dynamicfs/d2}',
    'csi.ephemeral.enabled=true',
    'csi.ephemeral.redundancy={replication:2}',
    'csi.ephemeral.pools={p}',
    'csi.allowedMountOptions={dev}',
    'storageClasses[0].mountOptions={nosuid,dev,noexec}',
  ],
};

test('golden renders of three value sets', () => {
  for (const [file, sets] of Object.entries(GOLDEN)) {
    const r = helm(['template', 'dfs', CHART, '--namespace', 'dynamicfs', ...sets.flatMap((s) => ['--set', s])]);
    assert.equal(r.code, 0, r.out);
    const golden = path.join(CHART, 'tests/golden', file);
    if (process.env.UPDATE_GOLDEN) fs.writeFileSync(golden, r.out);
    assert.equal(
      r.out,
      fs.readFileSync(golden, 'utf8'),
      `charts/dynamicfs/tests/golden/${file} differs from the render (UPDATE_GOLDEN=1 to accept)`,
    );
  }
});

test('values that must fail: unknown keys, bad policies, bad enums, bad types', () => {
  const bad: [string, RegExp][] = [
    ['bogus=1', /additional properties 'bogus' not allowed/],
    ['operator.replica=2', /additional properties 'replica' not allowed/],
    ['storageClasses[0].parameters.redundancy=raid5', /does not match pattern/],
    ['node.updateStrategy=Sometimes', /updateStrategy/],
    ['csiDriver.fsGroupPolicy=Maybe', /fsGroupPolicy/],
    ['kubeletDir=relative/path', /kubeletDir/],
    ['operator.replicas=zero', /replicas/],
    ['admissionPolicy.enabled=maybe', /admissionPolicy\/enabled': got string, want boolean/],
    ['csi.ephemeral.maxSize=lots', /ephemeral\/maxSize': 'lots' does not match pattern/],
    ['csi.ephemeral.redundancy={raid5}', /ephemeral\/redundancy\/0': 'raid5' does not match pattern/],
    ['csi.ephemeral.pools={Bad_Pool}', /ephemeral\/pools\/0': 'Bad_Pool' does not match pattern/],
    ['csi.ephemeral.bogus=1', /additional properties 'bogus' not allowed/],
  ];
  for (const [set, message] of bad) {
    const r = helm(['template', 'dfs', CHART, '--set', set]);
    assert.notEqual(r.code, 0, `${set} was accepted`);
    assert.match(r.out, message, `${set}: ${r.out}`);
  }
});

const controlPlane = controlPlaneForFile();

test('the rendered chart is accepted by a real kube-apiserver (server-side dry run)', (t) => {
  const cp = controlPlane();
  if (!cp) return skipBecause(t, 'kube-apiserver, etcd or kubectl is not built (test/fixtures/build needs Go and the module proxy)');
  cp.kubectl('create', 'namespace', 'dynamicfs');
  const r = helm([
    'template',
    'dfs',
    CHART,
    '--namespace',
    'dynamicfs',
    '--set',
    'monitoring.grafanaDashboard.enabled=true',
    '--set',
    'examplePools[0].name=p',
    '--set',
    'examplePools[0].nodeName=n1',
    '--set',
    'examplePools[0].disks={/mnt/disks/d1,/mnt/disks/d2}',
    '--set',
    'csi.ephemeral.enabled=true',
  ]);
  assert.equal(r.code, 0, r.out);
  const out = cp.kubectlRun(['apply', '--dry-run=server', '-f', '-'], r.out);
  assert.equal(out.code, 0, out.out);
  assert.match(out.out, /daemonset\.apps\/dfs-engine created \(server dry run\)/);
  assert.match(out.out, /csidriver\.storage\.k8s\.io\/csi\.dynamicfs\.io created \(server dry run\)/);
  assert.match(out.out, /dynamicfspool\.dynamicfs\.io\/p created \(server dry run\)/);
  assert.match(out.out, /validatingadmissionpolicy\.admissionregistration\.k8s\.io\/dfs-disk-paths created \(server dry run\)/);
  assert.match(out.out, /clusterrole\.rbac\.authorization\.k8s\.io\/dfs-csi created \(server dry run\)/);
});
