import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { csiClient, type CsiClient } from './csi-client.js';
import { lazyUnmount } from '../../engine/fuse/mount.js';
import { makePool, MountedPool, type TestPool } from './env.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CSI_MAIN = path.resolve(here, '../../csi-driver/src/main.js');

/** The CSI plugin as its own process (as in a DaemonSet), serving the pools of a test node. */
export class CsiPlugin {
  private constructor(
    readonly child: ChildProcess,
    readonly socket: string,
    readonly log: () => string,
  ) {}

  static async start(
    socket: string,
    pools: Record<string, string>,
    targetRoot: string,
    nodeId = 'node-1',
    extra: string[] = [],
  ): Promise<CsiPlugin> {
    let log = '';
    const args = [
      CSI_MAIN,
      '--endpoint',
      `unix://${socket}`,
      '--node-id',
      nodeId,
      '--target-root',
      targetRoot,
      '--log-format',
      'json',
      '--log-level',
      'debug',
      ...extra,
    ];
    for (const [name, dir] of Object.entries(pools)) args.push('--pool', `${name}=${dir}`);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    for (let i = 0; i < 200 && !fs.existsSync(socket); i++) {
      if (child.exitCode !== null) throw new Error(`CSI plugin exited with ${child.exitCode}: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return new CsiPlugin(child, socket, () => log);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill(signal);
    await exited;
  }
}

/** A node: a mounted pool (engine daemon), the CSI plugin beside it, a client, and a kubelet-like target root. */
export interface CsiNode {
  pool: TestPool;
  mount: MountedPool;
  plugin: CsiPlugin;
  client: CsiClient;
  targets: string;
  socket: string;
}

/** `pluginArgs`: more flags for the plugin (--ephemeral, --allow-mount-option, ...). */
export async function startCsiNode(
  options: { redundancy?: string; disks?: number; capacities?: (number | null)[]; pluginArgs?: string[] } = {},
): Promise<CsiNode> {
  const pool = await makePool({
    redundancy: options.redundancy ?? 'replication:2',
    disks: options.disks ?? 3,
    extentSize: 64 * 1024,
    capacities: options.capacities,
  });
  const targets = path.join(pool.root, 'kubelet');
  fs.mkdirSync(targets);
  const mount = await MountedPool.start(pool.pool, pool.mnt);
  const socket = path.join(pool.root, 'csi.sock');
  const plugin = await CsiPlugin.start(socket, { pool: pool.pool }, targets, 'node-1', options.pluginArgs ?? []);
  return { pool, mount, plugin, client: csiClient(socket), targets, socket };
}

export async function stopCsiNode(n: CsiNode | undefined): Promise<void> {
  if (!n) return;
  n.client.close();
  await n.plugin.stop();
  await n.mount.stop();
  // A failed test can leave bind mounts behind: detach everything under the test's root, deepest first.
  const left = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m?.startsWith(`${n.pool.root}/`));
  for (const m of left.sort((a, b) => b.length - a.length)) await lazyUnmount(m);
}

/** Replaces the node's plugin with one started with other flags (the pool and its mounts stay). */
export async function restartPlugin(n: CsiNode, pluginArgs: string[]): Promise<void> {
  n.client.close();
  await n.plugin.stop();
  fs.rmSync(n.socket, { force: true });
  n.plugin = await CsiPlugin.start(n.socket, { pool: n.pool.pool }, n.targets, 'node-1', pluginArgs);
  n.client = csiClient(n.socket);
}
