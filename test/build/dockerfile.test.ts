import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

interface Instr {
  op: string;
  args: string;
  stage: string;
}

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function parse(text: string): Instr[] {
  const out: Instr[] = [];
  let stage = '';
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const line of logical) {
    const m = /^([A-Z]+)\s+(.*)$/.exec(line);
    assert.ok(m, `not an instruction: ${line}`);
    if (m[1] === 'FROM') stage = /\bAS\s+(\S+)/i.exec(m[2])?.[1] ?? '';
    out.push({ op: m[1], args: m[2], stage });
  }
  return out;
}

test('Dockerfile (checked statically: no Docker engine here): stages, copied paths, entrypoints, labels', () => {
  const ins = parse(fs.readFileSync(path.join(repo, 'Dockerfile'), 'utf8'));
  const stages = ins.filter((i) => i.op === 'FROM').map((i) => i.stage);
  assert.deepEqual(stages, ['build', 'runtime', 'node', 'operator']);
  assert.ok(!ins.some((i) => i.op === 'HEALTHCHECK'), 'probes, not HEALTHCHECK');
  // Every path copied from the build context exists.
  for (const c of ins.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))) {
    const parts = c.args.split(/\s+/);
    for (const src of parts.slice(0, -1)) assert.ok(fs.existsSync(path.join(repo, src)), `COPY ${src}: no such path`);
  }
  // The build stage compiles what the entrypoints name.
  execFileSync(
    process.execPath,
    [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', path.join(repo, 'dist-image-check')],
    { cwd: repo },
  );
  try {
    for (const e of ins.filter((i) => i.op === 'ENTRYPOINT')) {
      const argv = JSON.parse(e.args) as string[];
      const js = argv.find((a) => a.endsWith('.js')) as string;
      const rel = js.replace('/app/dist/', '');
      assert.ok(fs.existsSync(path.join(repo, 'dist-image-check', rel)), `${e.stage}: entrypoint ${js} is not built`);
    }
  } finally {
    fs.rmSync(path.join(repo, 'dist-image-check'), { recursive: true, force: true });
  }
  const operator = ins.filter((i) => i.stage === 'operator');
  assert.ok(
    operator.some((i) => i.op === 'USER' && !/^0(:|$)|^root/.test(i.args)),
    'the operator image runs as non-root',
  );
  const node = ins.filter((i) => i.stage === 'node');
  const apt = node.find((i) => i.op === 'RUN' && i.args.includes('apt-get install'))?.args ?? '';
  for (const pkg of ['fuse', 'libfuse2', 'util-linux', 'tini']) assert.match(apt, new RegExp(`\\b${pkg}\\b`), `node image lacks ${pkg}`);
  for (const stage of ['node', 'operator']) {
    // An image carries its own labels and those of the stage it is built FROM.
    const labels = ins
      .filter((i) => (i.stage === stage || i.stage === 'runtime') && i.op === 'LABEL')
      .map((i) => i.args)
      .join(' ');
    for (const l of ['title', 'version', 'licenses', 'source'])
      assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.${l}=`), `${stage}: no OCI ${l} label`);
  }
  for (const f of ins.filter((i) => i.op === 'FROM')) assert.match(f.args, /^(node:\$\{NODE_VERSION\}-|runtime )/);
  assert.match(fs.readFileSync(path.join(repo, 'Dockerfile'), 'utf8'), /ARG NODE_VERSION=(2[4-9]|[3-9]\d)/, 'a current LTS Node');
  assert.ok(
    ins.some((i) => i.stage === 'build' && i.op === 'RUN' && /npm prune --omit=dev/.test(i.args)),
    'production dependencies only',
  );
});
