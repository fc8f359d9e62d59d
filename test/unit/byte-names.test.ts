import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeName, encodeName, nameByteLength, printableName } from '../../engine/util/byte-names.js';
import { rng } from '../helpers/env.js';

test('every byte string survives decode then encode, and different bytes never give the same string', () => {
  const random = rng(18);
  const seen = new Map<string, string>();
  const samples: Buffer[] = [
    Buffer.from('caf\xe8.txt', 'latin1'),
    Buffer.from('caf\xe9.txt', 'latin1'),
    Buffer.from('café.txt'),
    Buffer.from([0xed, 0xa0, 0x80]), // UTF-8 of a surrogate: not valid UTF-8, kept as three bytes
    Buffer.from([0xf4, 0x90, 0x80, 0x80]), // past U+10FFFF
    Buffer.from([0xc0, 0xaf]), // overlong '/'
    Buffer.from([0xe2, 0x82]), // truncated sequence
    Buffer.from('😀 ok'),
  ];
  for (let i = 0; i < 3000; i++) {
    const len = 1 + Math.floor(random() * 12);
    // Mostly high bytes, so invalid and valid multi-byte sequences both come up.
    samples.push(
      Buffer.from(Array.from({ length: len }, () => (random() < 0.7 ? 0x80 + Math.floor(random() * 128) : Math.floor(random() * 128)))),
    );
  }
  for (const b of samples) {
    const s = decodeName(b);
    assert.deepEqual(encodeName(s), b, `round trip of ${b.toString('hex')}`);
    assert.equal(nameByteLength(s), b.length);
    const prior = seen.get(s);
    if (prior !== undefined) assert.equal(prior, b.toString('hex'), 'two byte strings decoded to one name');
    seen.set(s, b.toString('hex'));
  }
  assert.notEqual(decodeName(samples[0]), decodeName(samples[1]));
  assert.equal(decodeName(Buffer.from('café.txt')), 'café.txt', 'valid UTF-8 reads as itself');
});

test('printable names escape what a terminal would interpret', () => {
  assert.equal(printableName(decodeName(Buffer.from('caf\xe8.txt', 'latin1'))), 'caf\\xe8.txt');
  assert.equal(printableName('two\nlines\tand\x1b[31mred\\'), 'two\\nlines\\tand\\x1b[31mred\\\\');
  assert.equal(printableName('ünïcode ✓'), 'ünïcode ✓');
});
