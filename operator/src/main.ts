import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { configureLogging, logger, type LogFormat } from '../../engine/observability/logger.js';
import { mkdirPrivate } from '../../engine/util/private-files.js';
import { KubeClient } from './kube/raw.js';
import { NodeAgent } from './node/agent.js';
import { agentHttp } from './node/agent-http.js';
import { serveHttp } from '../../engine/observability/http-server.js';
import { runOperator } from './operator.js';
import { restrictUmask } from '../../engine/util/private-files.js';

export async function main(argv: string[]): Promise<void> {
  restrictUmask();
  const program = new Command('dynamicfs-operator').description('DynamicFS operator (controller) and node agent');
  program
    .command('run')
    .description('the operator: reconciles DynamicFSPool and DynamicFSConfig (leader-elected)')
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster or ~/.kube/config)')
    .option('--namespace <ns>', 'namespace of the leader Lease and of Events', process.env.POD_NAMESPACE ?? 'default')
    .option('--lease-name <name>', 'leader election Lease', 'dynamicfs-operator')
    .option('--identity <id>', 'this replica in the Lease', process.env.POD_NAME ?? `${os.hostname()}-${process.pid}`)
    .option('--metrics-listen <host:port>', 'serve /metrics, /healthz, /readyz')
    .option('--node-stale-seconds <s>', 'a node report older than this makes conditions Unknown', '30')
    .addOption(new Option('--log-format <format>').choices(['auto', 'json', 'pretty']).default('auto'))
    .action(
      async (o: {
        kubeconfig?: string;
        namespace: string;
        leaseName: string;
        identity: string;
        metricsListen?: string;
        nodeStaleSeconds: string;
        logFormat: LogFormat;
      }) => {
        configureLogging({ format: o.logFormat, level: 'info' });
        await runOperator({
          kubeconfig: o.kubeconfig,
          namespace: o.namespace,
          leaseName: o.leaseName,
          identity: o.identity,
          metricsListen: o.metricsListen,
          nodeStaleMs: Number(o.nodeStaleSeconds) * 1000,
        });
      },
    );
  program
    .command('node')
    .description('the node agent: hosts the pools of this node (engine daemons) and reports them')
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster or ~/.kube/config)')
    .option('--node-name <name>', 'this node', process.env.NODE_NAME ?? os.hostname())
    .option('--state-dir <dir>', 'where pools, mounts and configuration live on the host', '/var/lib/dynamicfs')
    .option('--report-seconds <s>', 'how often to reconcile and report', '2')
    .option('--metrics-listen <host:port>', 'serve /healthz, /readyz, /metrics and /health for the node')
    .option(
      '--disk-root <dir>',
      "disks must be at or below this directory (repeatable; the chart's diskPaths)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .addOption(new Option('--log-format <format>').choices(['auto', 'json', 'pretty']).default('auto'))
    .action(
      async (o: {
        kubeconfig?: string;
        nodeName: string;
        stateDir: string;
        reportSeconds: string;
        metricsListen?: string;
        diskRoot: string[];
        logFormat: LogFormat;
      }) => {
        configureLogging({ format: o.logFormat, level: 'info' });
        for (const r of o.diskRoot)
          if (!path.isAbsolute(r) || path.resolve(r) === '/')
            throw new Error(`--disk-root '${r}' must be an absolute directory other than /`);
        if (!o.diskRoot.length) logger('node-agent').warn("no --disk-root given: disks may be anywhere outside the system's directories");
        await mkdirPrivate(path.resolve(o.stateDir));
        if (o.metricsListen) await serveHttp(o.metricsListen, (target) => agentHttp(target, path.resolve(o.stateDir)));
        const agent = new NodeAgent(KubeClient.load(o.kubeconfig), {
          nodeName: o.nodeName,
          stateDir: path.resolve(o.stateDir),
          reportMs: Number(o.reportSeconds) * 1000,
          diskRoots: o.diskRoot.map((r) => path.resolve(r)),
        });
        agent.start();
        await new Promise<void>((resolve) => {
          process.once('SIGTERM', () => resolve());
          process.once('SIGINT', () => resolve());
        });
        agent.stop();
      },
    );
  await program.parseAsync(argv);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`dynamicfs-operator: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
