import { readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { AggregatorRegistry } from 'prom-client';
import { callControl } from '../../../engine/control/client.js';
import type { HttpReply } from '../../../engine/control/protocol.js';
import { readLockOwner } from '../../../engine/pool/lock.js';

const json = (status: number, v: unknown): HttpReply => ({ status, type: 'application/json', body: JSON.stringify(v, null, 2) + '\n' });

function poolDirs(stateDir: string): string[] {
  const root = path.join(stateDir, 'pools');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((d) => path.join(root, d))
    .filter((d) => existsSync(path.join(d, 'pool.json')));
}

/**
 * The node's endpoints, served by the node agent: /healthz (the agent is alive), /readyz (every pool's
 * engine daemon answers), /metrics (every daemon's registry, aggregated: series carry a pool label),
 * /health (the worst of the pools' /health). Numbers come from the daemons doing the I/O.
 */
export async function agentHttp(target: string, stateDir: string): Promise<HttpReply> {
  const p = new URL(target, 'http://x').pathname;
  const dirs = poolDirs(stateDir);
  if (p === '/healthz') return json(200, { alive: true, pools: dirs.length });
  const ask = async (dir: string, route: string) =>
    readLockOwner(dir) ? await callControl(dir, 'http', { path: route }, undefined, 10_000) : null;
  if (p === '/readyz') {
    const down = [];
    for (const d of dirs) if (!(await ask(d, '/readyz').catch(() => null))) down.push(path.basename(d));
    return json(
      down.length ? 503 : 200,
      down.length ? { ready: false, reason: `engine daemon not answering for ${down.join(', ')}` } : { ready: true, pools: dirs.length },
    );
  }
  if (p === '/metrics') {
    const all: object[] = [];
    for (const d of dirs) {
      const r = await ask(d, '/metrics/json').catch(() => null);
      if (r?.status === 200) all.push(JSON.parse(r.body) as object);
    }
    const reg = AggregatorRegistry.aggregate(all);
    return { status: 200, type: reg.contentType, body: await reg.metrics() };
  }
  if (p === '/health') {
    const replies = await Promise.all(dirs.map(async (d) => ({ pool: path.basename(d), r: await ask(d, '/health').catch(() => null) })));
    const worst = Math.max(200, ...replies.map((x) => x.r?.status ?? 503));
    return json(worst, {
      pools: replies.map((x) => ({
        pool: x.pool,
        status: x.r?.status ?? 503,
        body: x.r ? (JSON.parse(x.r.body) as unknown) : 'engine daemon not answering',
      })),
    });
  }
  return json(404, { error: `no endpoint ${p}`, endpoints: ['/healthz', '/readyz', '/metrics', '/health'] });
}
