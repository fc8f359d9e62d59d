import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lazyUnmount } from '../../engine/fuse/mount.js';
import { ControlPlane, fixtureBinaries } from './control-plane.js';
import { tempDir } from './env.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const OPERATOR = path.join(repo, 'dist/operator/src/main.js');
const CSI = path.join(repo, 'dist/csi-driver/src/main.js');
const CLI = path.join(repo, 'dist/engine/cli/main.js');

export interface Proc {
  child: ChildProcess;
  log: () => string;
  name: string;
}

/**
 * The whole product on this machine: etcd, kube-apiserver and kube-controller-manager; the operator;
 * the node agent with its engine daemons; the CSI plugin with the upstream external-provisioner in
 * node-deployment mode; this machine registered as node `nodeName` (Node and CSINode objects, as
 * kubelet would make them). Used by the end-to-end test and by `npm run local-cluster`.
 */
export class LocalCluster {
  readonly procs: Proc[] = [];
  private constructor(
    readonly cp: ControlPlane,
    readonly root: string,
    readonly nodeName: string,
  ) {}

  get stateDir(): string {
    return path.join(this.root, 'state');
  }
  get kubeletDir(): string {
    return path.join(this.root, 'kubelet');
  }
  get csiSocket(): string {
    return path.join(this.root, 'csi.sock');
  }

  static async start(nodeName = 'local-node'): Promise<LocalCluster | null> {
    const bins = fixtureBinaries(['csi-provisioner']);
    if (!bins) return null;
    const cp = await ControlPlane.start({ controllerManager: true });
    if (!cp) return null;
    const c = new LocalCluster(cp, tempDir('dfs-local-'), nodeName);
    try {
      fs.mkdirSync(c.kubeletDir, { recursive: true });
      // This machine as a node, as kubelet and node-driver-registrar would register it.
      cp.kubectlRun(
        ['apply', '-f', '-'],
        [
          'apiVersion: v1',
          'kind: Node',
          'metadata:',
          `  name: ${nodeName}`,
          '  labels:',
          `    kubernetes.io/hostname: ${nodeName}`,
          `    topology.dynamicfs.io/node: ${nodeName}`,
          '---',
          'apiVersion: storage.k8s.io/v1',
          'kind: CSINode',
          'metadata:',
          `  name: ${nodeName}`,
          'spec:',
          '  drivers:',
          '    - name: csi.dynamicfs.io',
          `      nodeID: ${nodeName}`,
          '      topologyKeys: [topology.dynamicfs.io/node]',
          '',
        ].join('\n'),
      );
      c.spawn('operator', process.execPath, [
        OPERATOR,
        'run',
        '--kubeconfig',
        cp.kubeconfig,
        '--log-format',
        'json',
        '--node-stale-seconds',
        '10',
      ]);
      c.spawn('node-agent', process.execPath, [
        OPERATOR,
        'node',
        '--kubeconfig',
        cp.kubeconfig,
        '--node-name',
        nodeName,
        '--state-dir',
        c.stateDir,
        '--report-seconds',
        '1',
        '--log-format',
        'json',
      ]);
      c.spawn('csi-plugin', process.execPath, [
        CSI,
        '--endpoint',
        `unix://${c.csiSocket}`,
        '--node-id',
        nodeName,
        '--pools-dir',
        path.join(c.stateDir, 'pools'),
        '--target-root',
        c.kubeletDir,
        '--log-format',
        'json',
      ]);
      for (let i = 0; i < 100 && !fs.existsSync(c.csiSocket); i++) await new Promise((r) => setTimeout(r, 100));
      c.spawn(
        'csi-provisioner',
        bins['csi-provisioner'],
        [
          `--csi-address=${c.csiSocket}`,
          `--kubeconfig=${cp.kubeconfig}`,
          '--node-deployment=true',
          '--feature-gates=Topology=true',
          '--strict-topology=true',
          '--extra-create-metadata=true',
          '--timeout=60s',
          '--v=2',
        ],
        { NODE_NAME: nodeName },
      );
      return c;
    } catch (err) {
      await c.stop();
      throw err;
    }
  }

  private spawn(name: string, bin: string, args: string[], env: Record<string, string> = {}): Proc {
    let log = '';
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    child.stdout?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-200_000)));
    child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-200_000)));
    const p = { child, name, log: () => log };
    this.procs.push(p);
    return p;
  }

  kubectl(...args: string[]): string {
    return this.cp.kubectl(...args);
  }

  logs(): string {
    return this.procs.map((p) => `--- ${p.name}:\n${p.log().slice(-3000)}`).join('\n');
  }

  async stop(): Promise<void> {
    for (const p of [...this.procs].reverse()) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
      const done = new Promise((r) => p.child.once('exit', r));
      p.child.kill('SIGTERM');
      await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
    // The engine daemons outlive the agent by design: stop them, then anything still mounted.
    const pools = path.join(this.stateDir, 'pools');
    if (fs.existsSync(pools)) {
      for (const d of fs.readdirSync(pools)) {
        await new Promise((r) => spawn(process.execPath, [CLI, 'unmount', path.join(pools, d)], { stdio: 'ignore' }).once('exit', r));
      }
    }
    const left = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m) => m?.startsWith(`${this.root}/`));
    for (const m of left.sort((a, b) => b.length - a.length)) await lazyUnmount(m);
    await this.cp.stop();
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
