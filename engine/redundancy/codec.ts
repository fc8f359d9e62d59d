import type * as RS from '@ronomon/reed-solomon';
import { ReedSolomon } from '../util/rs-limits.js';
import { fsError } from '../util/errors.js';
import { fragmentCount, type RedundancyPolicy } from './policy.js';
import { copyBytes } from '../util/bytes.js';

/**
 * Turns extent bytes into fragments and back. Replication fragments are the bytes themselves;
 * erasure fragments are k data shards and m Reed-Solomon parity shards (GF(2^8), computed by
 * @ronomon/reed-solomon in libuv's thread pool, so the event loop never does per-byte work).
 */

const contexts = new Map<string, RS.Context>();
function context(k: number, m: number): RS.Context {
  const key = `${k}+${m}`;
  let ctx = contexts.get(key);
  if (!ctx) {
    ctx = ReedSolomon.create(k, m);
    contexts.set(key, ctx);
  }
  return ctx;
}

/** Shard size for `length` bytes split k ways; the native coder needs multiples of 8. */
export function shardSize(length: number, k: number): number {
  return Math.max(8, Math.ceil(length / k / 8) * 8);
}

/** Size of fragment `slot` for an extent of `length` bytes. */
export function fragmentSize(policy: RedundancyPolicy, length: number): number {
  return policy.kind === 'replication' ? length : shardSize(length, policy.data);
}

function runCoder(k: number, m: number, sources: number, targets: number, data: Buffer, parity: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    ReedSolomon.encode(context(k, m), sources, targets, data, 0, data.length, parity, 0, parity.length, (error) =>
      error ? reject(error) : resolve(),
    );
  });
}

/** Encodes `data` (exactly the extent's bytes) into one buffer per fragment slot. */
export async function encodeExtent(
  policy: RedundancyPolicy,
  data: Buffer,
  alloc: (size: number) => Buffer = (size) => Buffer.from(new SharedArrayBuffer(size)),
): Promise<Buffer[]> {
  if (policy.kind === 'replication') return Array.from({ length: policy.copies }, () => data);
  const { data: k, parity: m } = policy;
  const size = shardSize(data.length, k);
  const dataShards = alloc(size * k);
  copyBytes(data, 0, data.length, dataShards, 0);
  dataShards.fill(0, data.length);
  const parityShards = alloc(size * m);
  let sources = 0;
  for (let i = 0; i < k; i++) sources |= 1 << i;
  let targets = 0;
  for (let i = k; i < k + m; i++) targets |= 1 << i;
  await runCoder(k, m, sources, targets, dataShards, parityShards);
  const out: Buffer[] = [];
  for (let i = 0; i < k; i++) out.push(dataShards.subarray(i * size, (i + 1) * size));
  for (let i = 0; i < m; i++) out.push(parityShards.subarray(i * size, (i + 1) * size));
  return out;
}

/**
 * Recomputes the fragments in `wanted` from the ones present (null = missing or bad).
 * Returns every slot's buffer. Throws EIO when fewer fragments survive than the policy needs.
 */
export async function reconstructFragments(
  policy: RedundancyPolicy,
  fragments: (Buffer | null)[],
  length: number,
  wanted: number[],
): Promise<Buffer[]> {
  const n = fragmentCount(policy);
  const present = fragments.filter((f): f is Buffer => f !== null);
  if (policy.kind === 'replication') {
    if (present.length === 0) throw fsError('EIO', 'every replica of the extent is lost');
    return Array.from({ length: n }, (_, i) => fragments[i] ?? present[0]);
  }
  const { data: k, parity: m } = policy;
  if (present.length < k) throw fsError('EIO', `only ${present.length} of ${n} fragments survive; erasure:${k}+${m} needs ${k}`);
  const size = shardSize(length, k);
  const dataShards = Buffer.alloc(size * k);
  const parityShards = Buffer.alloc(size * m);
  let sources = 0;
  let targets = 0;
  for (let i = 0; i < n; i++) {
    const f = fragments[i];
    const dest = i < k ? dataShards.subarray(i * size, (i + 1) * size) : parityShards.subarray((i - k) * size, (i - k + 1) * size);
    if (f) {
      if (f.length !== size) throw fsError('EIO', `fragment ${i} has ${f.length} bytes, expected ${size}`);
      copyBytes(f, 0, size, dest, 0);
      sources |= 1 << i;
    } else if (wanted.includes(i)) {
      targets |= 1 << i;
    }
  }
  // The coder wants exactly k sources; extra ones are harmless but we keep the first k for speed.
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (sources & (1 << i)) {
      if (count >= k) sources &= ~(1 << i);
      else count++;
    }
  }
  if (targets !== 0) await runCoder(k, m, sources, targets, dataShards, parityShards);
  const out: Buffer[] = [];
  for (let i = 0; i < k; i++) out.push(dataShards.subarray(i * size, (i + 1) * size));
  for (let i = 0; i < m; i++) out.push(parityShards.subarray(i * size, (i + 1) * size));
  return out;
}

/** Rebuilds the extent's bytes from its fragments (null = missing or bad). */
export async function decodeExtent(
  policy: RedundancyPolicy,
  fragments: (Buffer | null)[],
  length: number,
  alloc: (size: number) => Buffer = (size) => Buffer.allocUnsafe(size),
): Promise<Buffer> {
  if (policy.kind === 'replication') {
    const f = fragments.find((x): x is Buffer => x !== null);
    if (!f) throw fsError('EIO', 'every replica of the extent is lost');
    return f.length === length ? f : f.subarray(0, length);
  }
  const k = policy.data;
  const missingData: number[] = [];
  for (let i = 0; i < k; i++) if (!fragments[i]) missingData.push(i);
  const data = missingData.length === 0 ? (fragments as Buffer[]) : await reconstructFragments(policy, fragments, length, missingData);
  const out = alloc(length);
  let pos = 0;
  // The first `length` bytes of the data shards, in order.
  for (let i = 0; i < k && pos < length; i++) pos += copyBytes(data[i], 0, Math.min(length - pos, data[i].length), out, pos);
  return out;
}
