import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { freePort, tempDir } from './env.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Paths of the fixtures test/fixtures/build made, or null when one is missing (no Go here). */
export function fixtureBinaries(names: string[]): Record<string, string> | null {
  let cache: string;
  try {
    cache = execFileSync(path.join(repo, 'test/fixtures/build'), names, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
  const out: Record<string, string> = {};
  for (const name of names) {
    const dir = fs.readdirSync(cache).find((d) => d.startsWith(`${name}-v`) && fs.existsSync(path.join(cache, d, name)));
    if (!dir) return null;
    out[name] = path.join(cache, dir, name);
  }
  return out;
}

async function waitUntil(what: string, check: () => Promise<boolean>, ms: number, log: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}:\n${log().slice(-3000)}`);
}

/**
 * etcd and kube-apiserver on loopback ports, with generated certificates and a token file; the
 * DynamicFS CRDs installed and Established. `kubectl(...)` runs the pinned kubectl against it.
 */
export class ControlPlane {
  private constructor(
    readonly dir: string,
    readonly kubeconfig: string,
    readonly server: string,
    readonly token: string,
    private readonly procs: ChildProcess[],
    private readonly bins: Record<string, string>,
    readonly logs: () => string,
  ) {}

  /** With `controllerManager`, kube-controller-manager runs too (PV binding, garbage collection). */
  static async start(options: { controllerManager?: boolean } = {}): Promise<ControlPlane | null> {
    const bins = fixtureBinaries(['etcd', 'kube-apiserver', 'kubectl', ...(options.controllerManager ? ['kube-controller-manager'] : [])]);
    if (!bins) return null;
    const dir = tempDir('dfs-k8s-');
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=dynamicfs-test-ca',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    );
    fs.writeFileSync(path.join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=kube-apiserver', '-keyout', 'apiserver.key', '-out', 'apiserver.csr');
    ssl(
      'x509',
      '-req',
      '-in',
      'apiserver.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'san.cnf',
      '-out',
      'apiserver.crt',
    );
    ssl('genrsa', '-out', 'sa.key', '2048');
    ssl('rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub');
    const token = `t${Math.random().toString(36).slice(2)}`;
    fs.writeFileSync(path.join(dir, 'tokens.csv'), `${token},admin,admin,system:masters\n`);
    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    let log = '';
    const procs: ChildProcess[] = [];
    const run = (bin: string, args: string[]) => {
      const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      p.stdout?.on('data', (d: Buffer) => (log += d.toString()));
      p.stderr?.on('data', (d: Buffer) => (log += d.toString()));
      procs.push(p);
      return p;
    };
    run(bins.etcd, [
      '--name',
      'default',
      '--data-dir',
      path.join(dir, 'etcd'),
      '--log-level',
      'warn',
      '--listen-client-urls',
      `http://127.0.0.1:${etcdClient}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${etcdClient}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${etcdPeer}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${etcdPeer}`,
      '--initial-cluster',
      `default=http://127.0.0.1:${etcdPeer}`,
    ]);
    run(bins['kube-apiserver'], [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${dir}/apiserver.crt`,
      `--tls-private-key-file=${dir}/apiserver.key`,
      `--client-ca-file=${dir}/ca.crt`,
      `--token-auth-file=${dir}/tokens.csv`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${dir}/sa.pub`,
      `--service-account-signing-key-file=${dir}/sa.key`,
      '--service-cluster-ip-range=10.96.0.0/24',
      `--cert-dir=${dir}/certs`,
      '--v=0',
      '--allow-privileged=true',
    ]);
    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: test',
        '  cluster:',
        `    server: ${server}`,
        `    certificate-authority-data: ${fs.readFileSync(path.join(dir, 'ca.crt')).toString('base64')}`,
        'users:',
        '- name: admin',
        '  user:',
        `    token: ${token}`,
        'contexts:',
        '- name: test',
        '  context: {cluster: test, user: admin}',
        'current-context: test',
        '',
      ].join('\n'),
    );
    const cp = new ControlPlane(dir, kubeconfig, server, token, procs, bins, () => log);
    try {
      await waitUntil(
        'kube-apiserver /readyz',
        async () => cp.kubectlOk('get', '--raw', '/readyz'),
        90_000,
        () => log,
      );
      if (options.controllerManager) {
        run(bins['kube-controller-manager'], [
          `--kubeconfig=${kubeconfig}`,
          '--leader-elect=false',
          '--use-service-account-credentials=false',
          `--service-account-private-key-file=${dir}/sa.key`,
          `--root-ca-file=${dir}/ca.crt`,
          '--secure-port=0',
          '--v=0',
        ]);
      }
      cp.kubectl('apply', '-f', path.join(repo, 'crds'));
      cp.kubectl(
        'wait',
        '--for=condition=Established',
        '--timeout=60s',
        'crd/dynamicfspools.dynamicfs.io',
        'crd/dynamicfsconfigs.dynamicfs.io',
      );
    } catch (err) {
      await cp.stop();
      throw err;
    }
    return cp;
  }

  kubectl(...args: string[]): string {
    return execFileSync(this.bins.kubectl, ['--kubeconfig', this.kubeconfig, ...args], {
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }

  /** kubectl with stdin; returns the exit code and both streams (for refusals). */
  kubectlRun(args: string[], input?: string): { code: number; out: string } {
    try {
      const out = execFileSync(this.bins.kubectl, ['--kubeconfig', this.kubeconfig, ...args], {
        encoding: 'utf8',
        input,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      return { code: 0, out };
    } catch (err) {
      const e = err as { status: number; stdout: string; stderr: string };
      return { code: e.status ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  }

  private kubectlOk(...args: string[]): boolean {
    return this.kubectlRun(args).code === 0;
  }

  async stop(): Promise<void> {
    for (const p of this.procs.reverse()) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
      if (p.exitCode === null) p.kill('SIGKILL');
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * One control plane for the tests of a file: started before them (then `setup`), stopped after.
 * The getter gives null when the fixtures are not built (and CI, which must build them, fails).
 */
export function controlPlaneForFile(setup: (cp: ControlPlane) => void = () => undefined): () => ControlPlane | null {
  let cp: ControlPlane | null = null;
  before(async () => {
    cp = await ControlPlane.start();
    if (!cp && process.env.CI) throw new Error('kube-apiserver, etcd or kubectl is not built');
    if (cp) setup(cp);
  });
  after(async () => {
    await cp?.stop();
  });
  return () => cp;
}
