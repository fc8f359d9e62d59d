/**
 * The two-minute tour: a pool of four directory disks in a temporary folder, mounted, filled with
 * sample files, one disk failed, every file read back and verified, status printed, unmounted.
 * Leaves nothing mounted, even when a step fails.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMounted, lazyUnmount } from '../fuse/mount.js';
import { patternBytes } from '../util/pattern.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');
const started = Date.now();

function step(text: string): void {
  process.stdout.write(`\n== ${text} (${((Date.now() - started) / 1000).toFixed(1)}s)\n`);
}

function dynamicfs(...args: string[]): string {
  process.stdout.write(`$ dynamicfs ${args.join(' ')}\n`);
  const out = execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  if (out.trim()) process.stdout.write(out.endsWith('\n') ? out : out + '\n');
  return out;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dynamicfs-demo-'));
  const pool = path.join(root, 'pool');
  const mnt = path.join(root, 'mnt');
  const disks = [1, 2, 3, 4].map((i) => path.join(root, `disk${i}`));
  try {
    step('create a pool of four directory disks (default policy erasure:2+1)');
    dynamicfs('init', pool, '--redundancy', 'erasure:2+1', '--extent-size', '1MiB');
    disks.forEach((d, i) => {
      fs.mkdirSync(d);
      // Four directories of one filesystem stand in for four devices: each names its own failure domain.
      dynamicfs('add-disk', pool, d, '--tier', i < 2 ? 'hot' : 'warm', '--capacity', '2GiB', '--failure-domain', `demo-disk${i + 1}`);
    });

    step('mount it');
    fs.mkdirSync(mnt);
    dynamicfs('mount', pool, mnt);

    step('write sample files (a mirrored directory with replication:2, the rest erasure:2+1)');
    fs.mkdirSync(path.join(mnt, 'mirrored'));
    dynamicfs('set-policy', pool, '/mirrored', 'replication:2');
    const samples = new Map<string, string>();
    const put = (rel: string, data: Buffer) => {
      fs.mkdirSync(path.dirname(path.join(mnt, rel)), { recursive: true });
      fs.writeFileSync(path.join(mnt, rel), data);
      samples.set(rel, sha(data));
    };
    put('README.txt', Buffer.from('DynamicFS demo: every byte of this pool survives the loss of any one disk.\n'));
    put('photos/big.bin', patternBytes(1, 24 << 20));
    put('photos/small.bin', patternBytes(2, 300_000));
    put('mirrored/ledger.csv', Buffer.from(Array.from({ length: 5000 }, (_, i) => `${i},${(i * 7919) % 1000},entry-${i}`).join('\n')));
    put('mirrored/db.bin', patternBytes(3, 5 << 20));
    for (const [rel, digest] of samples)
      process.stdout.write(
        `  ${rel.padEnd(22)} ${fs.statSync(path.join(mnt, rel)).size.toString().padStart(10)} bytes  sha256 ${digest.slice(0, 16)}\n`,
      );

    step(`mark ${disks[1]} failed`);
    dynamicfs('set-disk-health', pool, disks[1], 'failed', '--reason', 'demo: pulled the drive');

    step('read every file back and verify it');
    let ok = 0;
    for (const [rel, digest] of samples) {
      const got = sha(fs.readFileSync(path.join(mnt, rel)));
      const good = got === digest;
      ok += good ? 1 : 0;
      process.stdout.write(`  ${good ? 'OK ' : 'BAD'} ${rel}\n`);
    }
    if (ok !== samples.size) throw new Error(`${samples.size - ok} file(s) did not read back correctly`);
    process.stdout.write(`  all ${ok} files read back byte for byte with a disk failed\n`);

    step('status');
    dynamicfs('status', pool);

    step('unmount');
    dynamicfs('unmount', pool);
    if (await isMounted(mnt)) throw new Error(`${mnt} is still mounted`);
    process.stdout.write(`\ndemo finished in ${((Date.now() - started) / 1000).toFixed(1)}s; nothing is left mounted\n`);
  } finally {
    if (await isMounted(mnt)) {
      try {
        execFileSync(process.execPath, [CLI, 'unmount', pool], { stdio: 'ignore' });
      } catch {
        await lazyUnmount(mnt);
      }
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
