import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { PoolStatus } from '../../engine/report/status.js';
import type { Diagnosis } from '../../engine/report/diagnose.js';
import { fromCsv, fromJsonLines } from '../../engine/observability/event-log.js';
import {
  CLI,
  cleanup,
  cli,
  cliJson,
  eventually,
  freePort,
  httpGet,
  makePool,
  metricValue,
  MountedPool,
  patternBytes,
  type TestPool,
} from '../helpers/env.js';

function fragmentFiles(p: TestPool, eid: number): string[] {
  const py =
    "import sqlite3,sys,json; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); print(json.dumps([[r[0], r[1], r[2]] for r in c.execute('select f.eid, f.slot, d.path from fragments f join disks d on d.id = f.disk where f.eid = ?', (int(sys.argv[2]),))]))";
  const rows = JSON.parse(execFileSync('python3', ['-c', py, path.join(p.pool, 'metadata.db'), String(eid)], { encoding: 'utf8' })) as [
    number,
    number,
    string,
  ][];
  return rows.map(([e, slot, dir]) => path.join(dir, 'dynamicfs/fragments', (e & 0xff).toString(16).padStart(2, '0'), `${e}.${slot}`));
}

function firstExtentOf(p: TestPool, name: string): number {
  const py =
    "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); ino=c.execute('select ino from dirents where parent=1 and name=?', (sys.argv[2],)).fetchone()[0]; print(c.execute('select eid from extents where ino=? order by idx limit 1', (ino,)).fetchone()[0])";
  return Number(execFileSync('python3', ['-c', py, path.join(p.pool, 'metadata.db'), name], { encoding: 'utf8' }).trim());
}

test('metrics, /health, events and logs come from the running daemon and move when the engine acts', async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 3, extentSize: 64 * 1024 });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let m: MountedPool | undefined;
  let serve: ReturnType<typeof spawn> | undefined;
  try {
    m = await MountedPool.start(p.pool, p.mnt, ['--metrics-listen', `127.0.0.1:${port}`, '--log-format', 'json']);
    assert.equal((await httpGet(`${base}/healthz`)).status, 200);
    // The daemon takes its address before it mounts, and is ready once it serves the pool.
    await eventually('the daemon ready', async () => ((await httpGet(`${base}/readyz`)).status === 200 ? true : undefined));
    const healthy = await httpGet(`${base}/health`);
    assert.equal(healthy.status, 200, healthy.body);
    assert.equal((JSON.parse(healthy.body) as { status: string }).status, 'healthy');

    const metricsOf = async () => (await httpGet(`${base}/metrics`)).body;
    const before = await metricsOf();
    assert.equal(metricValue(before, 'dynamicfs_written_bytes_total', { pool: 'pool' }) ?? 0, 0);
    const prom = await httpGet(`${base}/metrics/prometheus`);
    assert.match(prom.type, /text\/plain/);
    // A write raises bytes written: user bytes once, disk bytes twice (replication:2).
    fs.writeFileSync(path.join(p.mnt, 'a'), patternBytes(1, 1 << 20));
    fs.writeFileSync(path.join(p.mnt, 'b'), patternBytes(2, 256 * 1024));
    const afterWrite = await metricsOf();
    assert.ok((metricValue(afterWrite, 'dynamicfs_written_bytes_total', { pool: 'pool' }) ?? 0) >= (1 << 20) + 256 * 1024);
    const diskBytes = ['1', '2', '3'].map(() => 0);
    const disks = cliJson<{ disks: { id: string }[] }>('list-disks', p.pool).disks.map((d) => d.id);
    disks.forEach((d, i) => (diskBytes[i] = metricValue(afterWrite, 'dynamicfs_disk_written_bytes_total', { pool: 'pool', disk: d }) ?? 0));
    assert.equal(
      diskBytes.reduce((a, b) => a + b, 0),
      2 * ((1 << 20) + 256 * 1024),
    );
    assert.ok((metricValue(afterWrite, 'dynamicfs_fuse_operations_total', { pool: 'pool', operation: 'write', result: 'ok' }) ?? 0) > 0);
    assert.equal(metricValue(afterWrite, 'dynamicfs_disk_health', { pool: 'pool', disk: disks[0], state: 'healthy' }), 1);
    const asJson = JSON.parse((await httpGet(`${base}/metrics/json`)).body) as { name: string }[];
    assert.ok(asJson.some((x) => x.name === 'dynamicfs_disk_written_bytes_total'));

    // A failed disk with redundancy left: the health gauge shows it and /health answers 202.
    assert.equal(cli('set-disk-health', p.pool, disks[0], 'failed').code, 0);
    const degraded = await httpGet(`${base}/health`);
    assert.equal(degraded.status, 202, degraded.body);
    assert.match(degraded.body, new RegExp(`disk ${disks[0]} .* is failed`));
    const failedMetrics = await metricsOf();
    assert.equal(metricValue(failedMetrics, 'dynamicfs_disk_health', { pool: 'pool', disk: disks[0], state: 'failed' }), 1);
    assert.equal(metricValue(failedMetrics, 'dynamicfs_disk_health', { pool: 'pool', disk: disks[0], state: 'healthy' }), 0);
    assert.ok((metricValue(failedMetrics, 'dynamicfs_extents', { pool: 'pool', health: 'degraded' }) ?? 0) > 0);

    // A rebuild raises its counters.
    const rebuilt = cliJson<{ extents: { rebuilt: number }; bytesWritten: number }>('rebuild', p.pool);
    assert.ok(rebuilt.extents.rebuilt > 0);
    const afterRebuild = await metricsOf();
    assert.equal(metricValue(afterRebuild, 'dynamicfs_rebuild_extents_succeeded_total', { pool: 'pool' }), rebuilt.extents.rebuilt);
    assert.equal(metricValue(afterRebuild, 'dynamicfs_rebuild_extents_attempted_total', { pool: 'pool' }), rebuilt.extents.rebuilt);
    assert.equal(metricValue(afterRebuild, 'dynamicfs_rebuild_written_bytes_total', { pool: 'pool' }), rebuilt.bytesWritten);
    assert.equal(metricValue(afterRebuild, 'dynamicfs_extents', { pool: 'pool', health: 'degraded' }), 0);

    // A scrub sets the last-success timestamp.
    assert.equal(metricValue(afterRebuild, 'dynamicfs_scrub_last_success_timestamp_seconds', { pool: 'pool' }), 0);
    const t0 = Date.now() / 1000;
    assert.equal(cli('scrub', p.pool).code, 0);
    const afterScrub = await metricsOf();
    const last = metricValue(afterScrub, 'dynamicfs_scrub_last_success_timestamp_seconds', { pool: 'pool' }) ?? 0;
    assert.ok(last >= t0 - 1 && last <= Date.now() / 1000 + 1, `last scrub ${last} not near ${t0}`);
    assert.equal(metricValue(afterScrub, 'dynamicfs_scrub_runs_total', { pool: 'pool' }), 1);

    // `serve` on a mounted pool answers from the daemon, not from counters of its own.
    const port2 = await freePort();
    serve = spawn(process.execPath, [CLI, 'serve', p.pool, '--listen', `127.0.0.1:${port2}`], { stdio: 'ignore' });
    const proxied = await eventually(
      'serve to answer',
      async () => (await httpGet(`http://127.0.0.1:${port2}/metrics`).catch(() => undefined))?.body,
    );
    assert.equal(metricValue(proxied, 'dynamicfs_scrub_runs_total', { pool: 'pool' }), 1);
    assert.equal(metricValue(proxied, 'dynamicfs_rebuild_extents_succeeded_total', { pool: 'pool' }), rebuilt.extents.rebuilt);

    // An unrecoverable extent: /health answers 503 and names the file.
    for (const f of fragmentFiles(p, firstExtentOf(p, 'b'))) fs.rmSync(f);
    assert.throws(() => fs.readFileSync(path.join(p.mnt, 'b')), /EIO/);
    const critical = await eventually('/health to turn critical', async () => {
      const r = await httpGet(`${base}/health`);
      return r.status === 503 ? r : undefined;
    });
    assert.match(critical.body, /unrecoverable in 1 file\(s\): \/b/);
    assert.equal((await httpGet(`http://127.0.0.1:${port2}/health`)).status, 503);
    const diag = JSON.parse((await httpGet(`${base}/diagnostics`)).body) as Diagnosis;
    assert.equal(diag.overall, 'critical');
    assert.ok(diag.issues.some((i) => i.check === 'extents.unrecoverable' && i.runbook === 'docs/runbooks/unrecoverable-extents.md'));
    assert.ok(
      diag.performance.writeLatencyMs && diag.performance.writeLatencyMs.samples > 0,
      'the daemon reports the latencies it measured',
    );

    // The event log: disk transition, rebuild and scrub start and end, the failed read.
    const csv = cli('events', p.pool, '--format', 'csv');
    assert.equal(csv.code, 0, csv.stderr);
    const evs = fromCsv(csv.stdout);
    assert.ok(
      evs.some((e) => e.component === 'pool' && e.context.to === 'failed' && e.context.disk === disks[0]),
      'no disk transition event',
    );
    for (const msg of [/^rebuild started/, /^rebuild finished/, /^scrub started/, /^scrub finished/])
      assert.ok(
        evs.some((e) => msg.test(e.message)),
        `no event ${msg}`,
      );
    assert.ok(
      evs.some((e) => e.level === 'ERROR' && /EIO/.test(e.message)),
      'no EIO event',
    );
    const scrubOnly = fromJsonLines(cli('events', p.pool, '--component', 'scrub').stdout);
    assert.ok(scrubOnly.length >= 2 && scrubOnly.every((e) => e.component === 'scrub'));
    assert.equal(cli('events', p.pool, '--since', new Date(Date.now() + 3_600_000).toISOString()).stdout, '');
    assert.equal(cli('events', p.pool, '--since', 'yesterday-ish').code, 2);
    const httpEvents = await httpGet(`${base}/events?level=error&format=jsonl`);
    assert.ok(fromJsonLines(httpEvents.body).every((e) => e.level === 'ERROR'));

    // Logs: JSON lines with the promised fields; one trace id from scrub start to scrub end.
    const lines = m
      .log()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(lines.length > 5);
    for (const l of lines)
      for (const k of ['timestamp', 'level', 'component', 'message', 'trace_id', 'context'])
        assert.ok(k in l, `log line without ${k}: ${JSON.stringify(l)}`);
    const started = lines.find((l) => /^scrub started/.test(String(l.message)));
    const finished = lines.find((l) => /^scrub finished/.test(String(l.message)));
    assert.ok(started?.trace_id && started.trace_id === finished?.trace_id, 'scrub start and end do not share a trace id');
  } finally {
    serve?.kill('SIGTERM');
    await m?.stop();
    cleanup(p.root);
  }
});

test('a daemon runs scheduled scrubs, applies live fields on SIGHUP, names those that need a restart and refuses a bad file', async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 2, extentSize: 64 * 1024 });
  const file = path.join(p.root, 'dynamicfs.yaml');
  fs.writeFileSync(file, 'reliability:\n  auto_scrub: true\n  scrub_interval: 2s\n  scrub_repair: true\nmonitoring:\n  log_level: info\n');
  let m: MountedPool | undefined;
  try {
    m = await MountedPool.start(p.pool, p.mnt, ['--config', file, '--log-format', 'json']);
    fs.writeFileSync(path.join(p.mnt, 'x'), patternBytes(5, 300_000));
    const scrubbed = await eventually('a scheduled scrub', () => cliJson<PoolStatus>('status', p.pool).lastScrub ?? undefined, 30_000);
    assert.equal(scrubbed.repair, true);
    assert.ok(fromJsonLines(cli('events', p.pool).stdout).some((e) => e.message === 'scheduled scrub starting'));

    fs.writeFileSync(
      file,
      'reliability:\n  auto_scrub: false\n  scrub_interval: 2s\nmonitoring:\n  log_level: debug\nperformance:\n  data_cache_size: 32MiB\nstorage:\n  extent_size: 512KiB\n',
    );
    m.child.kill('SIGHUP');
    const changed = await eventually('the reload', () =>
      m
        ?.log()
        .split('\n')
        .find((l) => l.includes('configuration changed')),
    );
    const entry = JSON.parse(changed) as { context: { applied: string[]; needRestart: string[]; creationOnly: string[] } };
    assert.deepEqual(entry.context.applied.sort(), ['monitoring.log_level', 'reliability.auto_scrub']);
    assert.deepEqual(entry.context.needRestart, ['performance.data_cache_size']);
    assert.deepEqual(entry.context.creationOnly, ['storage.extent_size']);
    await eventually('the restart warning', () =>
      m
        ?.log()
        .split('\n')
        .find((l) => l.includes('take effect at the next mount: performance.data_cache_size')),
    );
    const shown = JSON.parse(cli('config', 'show', '--pool', p.pool, '--format', 'json').stdout) as {
      monitoring: { log_level: string };
      reliability: { auto_scrub: boolean };
    };
    assert.deepEqual([shown.monitoring.log_level, shown.reliability.auto_scrub], ['debug', false]);
    // Live: the scrub schedule stopped.
    const scrubsBefore = fromJsonLines(cli('events', p.pool).stdout).filter((e) => e.message === 'scheduled scrub starting').length;
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(
      fromJsonLines(cli('events', p.pool).stdout).filter((e) => e.message === 'scheduled scrub starting').length,
      scrubsBefore,
      'auto_scrub: false did not stop the schedule',
    );

    fs.writeFileSync(file, 'reliability:\n  rebuild_concurrency: lots\n');
    m.child.kill('SIGHUP');
    await eventually('the refusal', () =>
      m
        ?.log()
        .split('\n')
        .find((l) => l.includes('configuration refused, keeping the current one') && l.includes('reliability.rebuild_concurrency')),
    );
    const kept = JSON.parse(cli('config', 'show', '--pool', p.pool, '--format', 'json').stdout) as { monitoring: { log_level: string } };
    assert.equal(kept.monitoring.log_level, 'debug');
    assert.ok(fs.readFileSync(path.join(p.mnt, 'x')).equals(patternBytes(5, 300_000)));
  } finally {
    await m?.stop();
    cleanup(p.root);
  }
});
