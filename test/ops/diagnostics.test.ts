import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Diagnosis } from '../../engine/report/diagnose.js';
import type { DiagnosticIssue } from '../../engine/report/issues.js';
import { cleanup, cli, cliJson, makePool, MountedPool, patternBytes } from '../helpers/env.js';

const MiB = 2 ** 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function issue(d: Diagnosis, check: string, subject?: string): DiagnosticIssue {
  const found = d.issues.find((i) => i.check === check && (subject === undefined || i.subject === subject));
  assert.ok(found, `no ${check}${subject ? ` for ${subject}` : ''} issue in ${JSON.stringify(d.issues.map((i) => i.check))}`);
  return found;
}

test('diagnostics: capacity past 80 and 95 percent, growth forecast, overdue scrub, disk errors and failed rebuilds, each with severity, recommendation and runbook', async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 2, capacities: [4 * MiB, 4 * MiB], extentSize: 64 * 1024 });
  let m: MountedPool | undefined;
  try {
    const cfg = path.join(p.root, 'c.yaml');
    fs.writeFileSync(
      cfg,
      'reliability:\n  auto_rebuild: false\n  auto_scrub: false\n  scrub_interval: 2s\nmonitoring:\n  history_interval: 1s\n  diagnostics:\n    scrub_overdue_factor: 1\n',
    );
    assert.equal(cli('config', 'apply', p.pool, cfg).code, 0);
    m = await MountedPool.start(p.pool, p.mnt);
    const file = path.join(p.mnt, 'fill');
    // Grow over a few history samples, then stop at 85% of each (mirrored) disk.
    for (let i = 0; i < 4; i++) {
      fs.appendFileSync(file, patternBytes(i, Math.round(0.85 * MiB)));
      await sleep(1300);
    }
    let d = cliJson<Diagnosis>('diagnose', p.pool);
    assert.equal(d.overall, 'warning');
    const poolCap = issue(d, 'capacity.pool');
    assert.equal(poolCap.severity, 'warning');
    assert.equal(poolCap.threshold, 80);
    assert.ok(Number(poolCap.value) >= 80 && Number(poolCap.value) < 95, `utilisation ${poolCap.value}`);
    assert.match(poolCap.message, /pool pool is 8\d\.\d% full .*warning at 80%/);
    assert.match(poolCap.recommendation, /dynamicfs add-disk/);
    assert.equal(poolCap.runbook, 'docs/runbooks/capacity-approaching-full.md');
    const disks = cliJson<{ disks: { id: string }[] }>('list-disks', p.pool).disks.map((x) => x.id);
    for (const id of disks) assert.equal(issue(d, 'capacity.disk', id).severity, 'warning');
    assert.ok(d.capacity.samples >= 3, `${d.capacity.samples} usage samples`);
    assert.ok((d.capacity.growthBytesPerDay ?? 0) > 0, 'no growth measured');
    const forecast = issue(d, 'capacity.forecast');
    assert.ok(Date.parse(String(forecast.value)) - Date.now() < 7 * 86_400_000);
    const overdue = issue(d, 'scrub.overdue');
    assert.equal(overdue.severity, 'warning');
    assert.match(overdue.recommendation, /dynamicfs scrub .* --repair/);
    assert.equal(overdue.runbook, 'docs/runbooks/scrub-overdue.md');

    // Past 95%: critical for the pool, error for each disk, and diagnose exits 1.
    fs.appendFileSync(file, patternBytes(9, Math.round(0.5 * MiB)));
    const r = cli('diagnose', p.pool, '--json');
    assert.equal(r.code, 1, 'diagnose of a critical pool exits 1');
    d = JSON.parse(r.stdout) as Diagnosis;
    assert.equal(d.overall, 'critical');
    assert.equal(issue(d, 'capacity.pool').severity, 'critical');
    assert.equal(issue(d, 'capacity.pool').threshold, 95);
    for (const id of disks) assert.equal(issue(d, 'capacity.disk', id).severity, 'error');
    const human = cli('diagnose', p.pool);
    assert.match(human.stdout, /\[CRITICAL\] capacity: pool pool is 9\d\.\d% full/);
    assert.match(human.stdout, /runbook: docs\/runbooks\/capacity-approaching-full\.md/);
    await m.stop();
    m = undefined;

    // Disk errors: rot in a fragment, found by a scrub, charged to its disk.
    const py =
      "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); r=c.execute('select f.eid, f.slot, d.path, d.id from fragments f join disks d on d.id=f.disk order by f.eid limit 1').fetchone(); print(r[0], r[1], r[2], r[3])";
    const [eid, slot, dir, diskId] = execFileSync('python3', ['-c', py, path.join(p.pool, 'metadata.db')], { encoding: 'utf8' })
      .trim()
      .split(' ');
    const frag = path.join(dir, 'dynamicfs/fragments', (Number(eid) & 0xff).toString(16).padStart(2, '0'), `${eid}.${slot}`);
    const bytes = fs.readFileSync(frag);
    bytes[100] ^= 0xff;
    fs.writeFileSync(frag, bytes);
    assert.equal(cli('scrub', p.pool).code, 1, 'a scrub that finds rot exits 1');
    d = cliJson<Diagnosis>('diagnose', p.pool);
    const errs = issue(d, 'disk.errors', diskId);
    assert.equal(errs.severity, 'warning');
    assert.equal(errs.value, 1);
    assert.match(errs.recommendation, /probe-disks .*scrub .*--repair/);
    assert.equal(errs.runbook, 'docs/runbooks/high-disk-error-rate.md');
    assert.equal(issue(d, 'scrub.findings').value, 1);
    assert.ok(!d.issues.some((i) => i.check === 'scrub.overdue'), 'a scrub just ran');

    // A failed disk and a rebuild with nowhere to go: both named, the rebuild rate below its threshold.
    const other = disks.find((x) => x !== diskId) as string;
    assert.equal(cli('set-disk-health', p.pool, other, 'failed').code, 0);
    cli('rebuild', p.pool);
    d = cliJson<Diagnosis>('diagnose', p.pool);
    assert.equal(issue(d, 'disk.failed', other).severity, 'error');
    const rb = issue(d, 'rebuild.success');
    assert.equal(rb.severity, 'error');
    assert.equal(rb.value, 0);
    assert.equal(rb.threshold, 95);
    assert.match(rb.recommendation, /add-disk/);
    assert.equal(rb.runbook, 'docs/runbooks/low-rebuild-success-rate.md');
  } finally {
    await m?.stop();
    cleanup(p.root);
  }
});
