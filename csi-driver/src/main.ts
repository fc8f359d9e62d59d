import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { configureLogging, logger, type LogFormat } from '../../engine/observability/logger.js';
import { VolumeLocks, type PluginContext } from './context.js';
import { Engines } from './engines.js';
import { serveCsi } from './server.js';

const log = logger('csi');

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('dynamicfs-csi')
    .description('CSI plugin (csi.dynamicfs.io): Identity, Controller and Node services for the pools of this node')
    .requiredOption('--endpoint <endpoint>', 'gRPC endpoint, unix:///csi/csi.sock')
    .option('--node-id <id>', 'this node (Kubernetes node name; default $NODE_NAME)', process.env.NODE_NAME ?? os.hostname())
    .option('--pool <name=dir>', 'a pool of this node and its directory (repeatable); its engine daemon serves it', collect, [])
    .option('--pools-dir <dir>', "also every pool the node agent created under this directory (its --state-dir/pools)")
    .option('--target-root <dir>', 'directory target paths must lie in (repeatable)', collect, [])
    .addOption(new Option('--log-format <format>').choices(['auto', 'json', 'pretty']).default('auto'))
    .option('--log-level <level>', 'log level', 'info')
    .parse(argv);
  const o = program.opts<{ endpoint: string; nodeId: string; pool: string[]; poolsDir?: string; targetRoot: string[]; logFormat: LogFormat; logLevel: string }>();
  configureLogging({ format: o.logFormat, level: o.logLevel as 'info' });
  const pools = new Map<string, string>();
  for (const spec of o.pool) {
    const i = spec.indexOf('=');
    if (i <= 0) throw new Error(`--pool '${spec}' must be NAME=DIRECTORY`);
    pools.set(spec.slice(0, i), path.resolve(spec.slice(i + 1)));
  }
  const ctx: PluginContext = {
    nodeId: o.nodeId, engines: new Engines(pools, o.poolsDir ? path.resolve(o.poolsDir) : null), locks: new VolumeLocks(), version: '0.1.0',
    targetRoots: (o.targetRoot.length ? o.targetRoot : ['/var/lib/kubelet']).map((r) => path.resolve(r)),
  };
  const server = await serveCsi(o.endpoint, ctx);
  log.event('info', `CSI plugin serving ${o.endpoint} for node ${o.nodeId}: pools ${[...pools.keys()].join(', ') || 'none'}${o.poolsDir ? ` and those in ${o.poolsDir}` : ''}`, { pools: Object.fromEntries(pools) });
  await new Promise<void>((resolve) => {
    const stop = () => server.tryShutdown(() => resolve());
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv).then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`dynamicfs-csi: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
