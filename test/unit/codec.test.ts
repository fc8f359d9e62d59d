import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { decodeExtent, encodeExtent, fragmentSize, reconstructFragments } from '../../engine/redundancy/codec.js';
import { fragmentCount, parsePolicy } from '../../engine/redundancy/policy.js';

function* subsets(n: number, maxSize: number): Generator<number[]> {
  for (let mask = 0; mask < 1 << n; mask++) {
    const s: number[] = [];
    for (let i = 0; i < n; i++) if (mask & (1 << i)) s.push(i);
    if (s.length <= maxSize) yield s;
  }
}

for (const name of ['erasure:1+1', 'erasure:2+1', 'erasure:3+2', 'erasure:4+2', 'erasure:6+3', 'erasure:8+4']) {
  test(`${name}: every loss of up to m fragments decodes to the original bytes`, async () => {
    const policy = parsePolicy(name);
    assert.equal(policy.kind, 'erasure');
    const m = policy.kind === 'erasure' ? policy.parity : 0;
    for (const length of [1, 7, 4096, 65536 + 13]) {
      const data = randomBytes(length);
      const frags = await encodeExtent(policy, data);
      assert.equal(frags.length, fragmentCount(policy));
      for (const f of frags) assert.equal(f.length, fragmentSize(policy, length));
      for (const lost of subsets(frags.length, m)) {
        const damaged = frags.map((f, i) => (lost.includes(i) ? null : Buffer.from(f)));
        const back = await decodeExtent(policy, damaged, length);
        assert.ok(back.subarray(0, length).equals(data), `${name} len ${length} lost ${lost}`);
        // Rebuilding the lost fragments gives them back bit for bit.
        const rebuilt = await reconstructFragments(policy, damaged, length, lost);
        for (const i of lost) assert.ok(rebuilt[i].equals(frags[i]), `${name} rebuilt fragment ${i}`);
      }
    }
  });

  test(`${name}: losing m+1 fragments is reported as EIO, never wrong bytes`, async () => {
    const policy = parsePolicy(name);
    const m = policy.kind === 'erasure' ? policy.parity : 0;
    const data = randomBytes(10_000);
    const frags = await encodeExtent(policy, data);
    const damaged = frags.map((f, i) => (i <= m ? null : f));
    await assert.rejects(decodeExtent(policy, damaged, data.length), (err: Error & { code?: string }) => err.code === 'EIO');
  });
}

test('replication: any surviving copy decodes; none surviving is EIO', async () => {
  const policy = parsePolicy('replication:3');
  const data = randomBytes(5000);
  const frags = await encodeExtent(policy, data);
  assert.equal(frags.length, 3);
  for (const keep of [0, 1, 2]) {
    const back = await decodeExtent(
      policy,
      frags.map((f, i) => (i === keep ? f : null)),
      data.length,
    );
    assert.ok(back.subarray(0, data.length).equals(data));
  }
  await assert.rejects(decodeExtent(policy, [null, null, null], data.length), /every replica/);
});

test('policy strings: accepted forms and precise errors', () => {
  assert.deepEqual(parsePolicy('replication:2'), { kind: 'replication', copies: 2 });
  assert.deepEqual(parsePolicy('erasure:4+2'), { kind: 'erasure', data: 4, parity: 2 });
  assert.throws(() => parsePolicy('replication:0'), /copies must be between 1 and 16/);
  assert.throws(() => parsePolicy('erasure:4+0'), /m must be between 1/);
  assert.throws(() => parsePolicy('erasure:40+2'), /k must be between 1 and 24/);
  assert.throws(() => parsePolicy('raid5'), /'raid5' is not a policy.*replication:N.*erasure:k\+m/);
});
