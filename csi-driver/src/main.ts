import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { configureLogging, logger, type LogFormat } from '../../engine/observability/logger.js';
import { VolumeLocks, type EphemeralPolicy, type PluginContext } from './context.js';
import { isTier, TIERS } from '../../engine/config/rules.js';
import { formatPolicy, parsePolicy } from '../../engine/redundancy/policy.js';
import { parseSize } from '../../engine/util/units.js';
import { PRIVILEGED_MOUNT_FLAGS } from '../../engine/volumes/publish.js';
import { DEFAULT_MOUNT_WAIT_MS, Engines } from './engines.js';
import { serveCsi } from './server.js';
import { restrictUmask } from '../../engine/util/private-files.js';

const log = logger('csi');

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export async function main(argv: string[]): Promise<void> {
  restrictUmask();
  const program = new Command('dynamicfs-csi')
    .description('CSI plugin (csi.dynamicfs.io): Identity, Controller and Node services for the pools of this node')
    .requiredOption('--endpoint <endpoint>', 'gRPC endpoint, unix:///csi/csi.sock')
    .option('--node-id <id>', 'this node (Kubernetes node name; default $NODE_NAME)', process.env.NODE_NAME ?? os.hostname())
    .option('--pool <name=dir>', 'a pool of this node and its directory (repeatable); its engine daemon serves it', collect, [])
    .option('--pools-dir <dir>', 'also every pool the node agent created under this directory (its --state-dir/pools)')
    .option('--target-root <dir>', 'directory target paths must lie strictly inside (repeatable)', collect, [])
    .option('--ephemeral', 'serve inline ephemeral volumes (off by default: whoever creates a pod chooses their attributes)')
    .option('--ephemeral-max-size <size>', 'largest inline volume a pod may ask for', '1Gi')
    .option('--ephemeral-default-size <size>', 'size of an inline volume that names none', '100Mi')
    .option('--ephemeral-redundancy <policy>', 'a policy inline volumes may ask for (repeatable; none: the pool default only)', collect, [])
    .option('--ephemeral-pool <name>', 'a pool inline volumes may name (repeatable; none: any pool of the node)', collect, [])
    .option('--ephemeral-tier <tier>', 'a tier inline volumes may name (repeatable; none: no tier)', collect, [])
    .option(
      '--allow-mount-option <option>',
      `a mount option beyond nosuid,nodev that publications may carry: ${[...PRIVILEGED_MOUNT_FLAGS].join(' or ')} (repeatable)`,
      collect,
      [],
    )
    .option(
      '--mount-wait-seconds <seconds>',
      "how long a publish waits for a pool's mount that is missing (removed from outside, its daemon being restarted)",
      String(DEFAULT_MOUNT_WAIT_MS / 1000),
    )
    .addOption(new Option('--log-format <format>').choices(['auto', 'json', 'pretty']).default('auto'))
    .option('--log-level <level>', 'log level', 'info')
    .parse(argv);
  const o = program.opts<{
    endpoint: string;
    nodeId: string;
    pool: string[];
    poolsDir?: string;
    targetRoot: string[];
    logFormat: LogFormat;
    logLevel: string;
    ephemeral?: boolean;
    ephemeralMaxSize: string;
    ephemeralDefaultSize: string;
    ephemeralRedundancy: string[];
    ephemeralPool: string[];
    ephemeralTier: string[];
    allowMountOption: string[];
    mountWaitSeconds: string;
  }>();
  configureLogging({ format: o.logFormat, level: o.logLevel as 'info' });
  const pools = new Map<string, string>();
  for (const spec of o.pool) {
    const i = spec.indexOf('=');
    if (i <= 0) throw new Error(`--pool '${spec}' must be NAME=DIRECTORY`);
    pools.set(spec.slice(0, i), path.resolve(spec.slice(i + 1)));
  }
  for (const m of o.allowMountOption)
    if (!PRIVILEGED_MOUNT_FLAGS.has(m))
      throw new Error(`--allow-mount-option '${m}' is not one of ${[...PRIVILEGED_MOUNT_FLAGS].join(', ')}`);
  const ephemeral: EphemeralPolicy = {
    enabled: o.ephemeral === true,
    maxBytes: parseSize(o.ephemeralMaxSize, '--ephemeral-max-size'),
    defaultBytes: parseSize(o.ephemeralDefaultSize, '--ephemeral-default-size'),
    redundancy: o.ephemeralRedundancy.map((p) => formatPolicy(parsePolicy(p))),
    pools: o.ephemeralPool,
    tiers: o.ephemeralTier.map((t) => {
      if (!isTier(t)) throw new Error(`--ephemeral-tier '${t}' is not one of ${TIERS.join(', ')}`);
      return t;
    }),
  };
  if (ephemeral.defaultBytes > ephemeral.maxBytes)
    throw new Error(`--ephemeral-default-size ${o.ephemeralDefaultSize} is more than --ephemeral-max-size ${o.ephemeralMaxSize}`);
  const mountWait = Number(o.mountWaitSeconds);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(o.mountWaitSeconds) || !Number.isFinite(mountWait) || mountWait > 600)
    throw new Error(`--mount-wait-seconds '${o.mountWaitSeconds}' must be a number of seconds from 0 to 600`);
  const roots = (o.targetRoot.length ? o.targetRoot : ['/var/lib/kubelet']).map((r) => path.resolve(r));
  if (roots.includes('/')) throw new Error("--target-root '/' would let a target be any directory of the node");
  const ctx: PluginContext = {
    nodeId: o.nodeId,
    engines: new Engines(pools, o.poolsDir ? path.resolve(o.poolsDir) : null, mountWait * 1000),
    locks: new VolumeLocks(),
    version: '0.1.0',
    targetRoots: roots,
    ephemeral,
    allowedMountOptions: new Set(o.allowMountOption),
  };
  const server = await serveCsi(o.endpoint, ctx);
  log.event(
    'info',
    `CSI plugin serving ${o.endpoint} for node ${o.nodeId}: pools ${[...pools.keys()].join(', ') || 'none'}${o.poolsDir ? ` and those in ${o.poolsDir}` : ''}`,
    { pools: Object.fromEntries(pools) },
  );
  await new Promise<void>((resolve) => {
    const stop = () => server.tryShutdown(() => resolve());
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`dynamicfs-csi: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
