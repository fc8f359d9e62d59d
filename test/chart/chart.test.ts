import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { RUNBOOKS } from '../../engine/diagnostics/issues.js';
import { ControlPlane } from '../helpers/control-plane.js';
import { helm } from '../helpers/helm.js';
import { skipBecause } from '../helpers/skip.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const CHART = path.join(repo, 'charts/dynamicfs');

interface K8sObject { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown>; [k: string]: unknown }

function render(sets: string[] = []): K8sObject[] {
  const r = helm(['template', 'dfs', CHART, '--namespace', 'dynamicfs', ...sets.flatMap((s) => ['--set', s])]);
  assert.equal(r.code, 0, r.out);
  return parseAllDocuments(r.out).map((d) => d.toJS() as K8sObject).filter((o) => o && o.kind);
}
const find = (objs: K8sObject[], kind: string, name?: string) => objs.find((o) => o.kind === kind && (!name || o.metadata.name === name)) as K8sObject;
type Container = { name: string; securityContext?: Record<string, unknown>; volumeMounts?: { name: string; mountPath: string; mountPropagation?: string }[]; livenessProbe?: { httpGet?: { path: string } }; readinessProbe?: { httpGet?: { path: string } } };
const podSpec = (o: K8sObject) => (o.spec as { template: { spec: { containers: Container[]; securityContext?: Record<string, unknown> } } }).template.spec;

const MONITORING = ['monitoring.serviceMonitor.enabled=true', 'monitoring.serviceMonitor.force=true', 'monitoring.prometheusRule.enabled=true', 'monitoring.prometheusRule.force=true', 'monitoring.grafanaDashboard.enabled=true'];

test('helm lint --strict passes for the default values and the monitoring values', () => {
  for (const sets of [[], MONITORING, ['node.updateStrategy=RollingUpdate', 'operator.replicas=3']]) {
    const r = helm(['lint', '--strict', CHART, ...sets.flatMap((s) => ['--set', s])]);
    assert.equal(r.code, 0, r.out);
  }
});

test("the chart's CRDs are crds/ byte for byte", () => {
  for (const f of fs.readdirSync(path.join(repo, 'crds'))) {
    assert.equal(fs.readFileSync(path.join(CHART, 'crds', f), 'utf8'), fs.readFileSync(path.join(repo, 'crds', f), 'utf8'), `charts/dynamicfs/crds/${f} differs from crds/${f}`);
  }
  assert.deepEqual(fs.readdirSync(path.join(CHART, 'crds')).sort(), fs.readdirSync(path.join(repo, 'crds')).sort());
});

test('rendered objects: hardened operator, engine OnDelete with Bidirectional only where mounts reach kubelet, CSIDriver, StorageClasses, probes', () => {
  const objs = render();
  const op = podSpec(find(objs, 'Deployment'));
  assert.equal(op.securityContext?.runAsNonRoot, true);
  assert.deepEqual(op.containers[0].securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
  assert.ok(find(objs, 'PodDisruptionBudget'));
  const engine = find(objs, 'DaemonSet', 'dfs-engine');
  assert.deepEqual((engine.spec as { updateStrategy: unknown }).updateStrategy, { type: 'OnDelete' });
  const e = podSpec(engine).containers[0];
  assert.equal(e.livenessProbe?.httpGet?.path, '/healthz');
  assert.equal(e.readinessProbe?.httpGet?.path, '/readyz');
  const bidirectional = objs.filter((o) => o.kind === 'DaemonSet').flatMap((o) => podSpec(o).containers.flatMap((c) => (c.volumeMounts ?? []).filter((m) => m.mountPropagation === 'Bidirectional').map((m) => `${o.metadata.name}/${c.name}:${m.mountPath}`)));
  assert.deepEqual(bidirectional.sort(), ['dfs-csi/plugin:/var/lib/kubelet', 'dfs-engine/engine:/var/lib/dynamicfs', 'dfs-engine/engine:/var/lib/kubelet']);
  const csi = podSpec(find(objs, 'DaemonSet', 'dfs-csi'));
  assert.deepEqual(csi.containers.map((c) => c.name), ['plugin', 'node-driver-registrar', 'liveness-probe', 'csi-provisioner']);
  assert.ok(JSON.stringify(csi).includes('--node-deployment=true'));
  const driver = find(objs, 'CSIDriver');
  assert.deepEqual(driver.spec, { attachRequired: false, podInfoOnMount: true, storageCapacity: true, fsGroupPolicy: 'File', volumeLifecycleModes: ['Persistent', 'Ephemeral'] });
  const scs = objs.filter((o) => o.kind === 'StorageClass');
  assert.equal(scs.length, 2);
  for (const sc of scs) {
    assert.equal(sc.volumeBindingMode, 'WaitForFirstConsumer');
    assert.equal(sc.allowVolumeExpansion, true);
    assert.equal(sc.provisioner, 'csi.dynamicfs.io');
  }
  // Images are pinned, never :latest.
  for (const img of JSON.stringify(objs).match(/"image":"[^"]+"/g) ?? []) assert.doesNotMatch(img, /:latest"|"image":"[^:]+"$/);
  // Monitoring objects only when asked.
  assert.ok(!objs.some((o) => o.kind === 'ServiceMonitor' || o.kind === 'PrometheusRule'));
});

test('monitoring: ServiceMonitor, PrometheusRule alerts linking to runbooks that exist, dashboard; each alert can be switched off', () => {
  const objs = render(MONITORING);
  const sm = find(objs, 'ServiceMonitor');
  assert.equal((sm.spec as { endpoints: { path: string }[] }).endpoints[0].path, '/metrics');
  const rules = ((find(objs, 'PrometheusRule').spec as { groups: { rules: { alert: string; expr: string; annotations: { runbook_url: string } }[] }[] }).groups[0].rules);
  assert.deepEqual(rules.map((r) => r.alert).sort(), ['DynamicFSCapacityCritical', 'DynamicFSCapacityHigh', 'DynamicFSDiskFailed', 'DynamicFSExtentsDegraded', 'DynamicFSExtentsUnrecoverable', 'DynamicFSRebuildStalled', 'DynamicFSScrubOverdue']);
  const runbooks = new Set(Object.values(RUNBOOKS).map((r) => path.basename(r)));
  for (const r of rules) assert.ok(runbooks.has(path.basename(r.annotations.runbook_url)), `${r.alert} links to a runbook that does not exist: ${r.annotations.runbook_url}`);
  assert.match(rules.find((r) => r.alert === 'DynamicFSScrubOverdue')?.expr ?? '', /dynamicfs_scrub_last_success_timestamp_seconds > 691200/);
  assert.ok(find(objs, 'ConfigMap', 'dfs-dashboard'));
  const fewer = render([...MONITORING, 'monitoring.prometheusRule.alerts.diskFailed.enabled=false', 'monitoring.prometheusRule.alerts.capacityHigh.percent=70']);
  const r2 = ((find(fewer, 'PrometheusRule').spec as { groups: { rules: { alert: string; expr: string }[] }[] }).groups[0].rules);
  assert.ok(!r2.some((r) => r.alert === 'DynamicFSDiskFailed'));
  assert.match(r2.find((r) => r.alert === 'DynamicFSCapacityHigh')?.expr ?? '', /> 70$/);
  // Without the CRD and without force, nothing is rendered.
  assert.ok(!render(['monitoring.serviceMonitor.enabled=true']).some((o) => o.kind === 'ServiceMonitor'));
});

/** Golden renders: a chart change shows up as a diff to review (UPDATE_GOLDEN=1 rewrites them). */
const GOLDEN: Record<string, string[]> = {
  'default.yaml': [],
  'monitoring.yaml': MONITORING,
  'custom.yaml': ['kubeletDir=/var/lib/k0s/kubelet', 'node.updateStrategy=RollingUpdate', 'operator.replicas=3', 'storageClasses[0].name=fast', 'storageClasses[0].parameters.tier=hot', 'examplePools[0].name=p', 'examplePools[0].nodeName=n1', 'examplePools[0].disks={/d1,/d2}'],
};

test('golden renders of three value sets', () => {
  for (const [file, sets] of Object.entries(GOLDEN)) {
    const r = helm(['template', 'dfs', CHART, '--namespace', 'dynamicfs', ...sets.flatMap((s) => ['--set', s])]);
    assert.equal(r.code, 0, r.out);
    const golden = path.join(CHART, 'tests/golden', file);
    if (process.env.UPDATE_GOLDEN) fs.writeFileSync(golden, r.out);
    assert.equal(r.out, fs.readFileSync(golden, 'utf8'), `charts/dynamicfs/tests/golden/${file} differs from the render (UPDATE_GOLDEN=1 to accept)`);
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
  ];
  for (const [set, message] of bad) {
    const r = helm(['template', 'dfs', CHART, '--set', set]);
    assert.notEqual(r.code, 0, `${set} was accepted`);
    assert.match(r.out, message, `${set}: ${r.out}`);
  }
});

let cp: ControlPlane | null = null;
before(async () => {
  cp = await ControlPlane.start();
  if (!cp && process.env.CI) throw new Error('kube-apiserver, etcd or kubectl is not built');
});
after(async () => {
  await cp?.stop();
});

test('the rendered chart is accepted by a real kube-apiserver (server-side dry run)', (t) => {
  if (!cp) return skipBecause(t, 'kube-apiserver, etcd or kubectl is not built (test/fixtures/build needs Go and the module proxy)');
  cp.kubectl('create', 'namespace', 'dynamicfs');
  const r = helm(['template', 'dfs', CHART, '--namespace', 'dynamicfs', '--set', 'monitoring.grafanaDashboard.enabled=true', '--set', 'examplePools[0].name=p', '--set', 'examplePools[0].nodeName=n1', '--set', 'examplePools[0].disks={/d1,/d2}']);
  assert.equal(r.code, 0, r.out);
  const out = cp.kubectlRun(['apply', '--dry-run=server', '-f', '-'], r.out);
  assert.equal(out.code, 0, out.out);
  assert.match(out.out, /daemonset\.apps\/dfs-engine created \(server dry run\)/);
  assert.match(out.out, /csidriver\.storage\.k8s\.io\/csi\.dynamicfs\.io created \(server dry run\)/);
  assert.match(out.out, /dynamicfspool\.dynamicfs\.io\/p created \(server dry run\)/);
});
