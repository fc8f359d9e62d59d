import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { checksum } from '../../engine/integrity/checksum.js';

for (const alg of ['xxh64', 'crc32c'] as const) {
  test(`${alg}: stable, hex, and changes on any single bit flip`, () => {
    const data = randomBytes(64 * 1024);
    const sum = checksum(alg, data);
    assert.equal(sum, checksum(alg, Buffer.from(data)));
    assert.match(sum, alg === 'xxh64' ? /^[0-9a-f]{16}$/ : /^[0-9a-f]{8}$/);
    for (const bit of [0, 1, 7, 12345, data.length * 8 - 1]) {
      const flipped = Buffer.from(data);
      flipped[bit >> 3] ^= 1 << (bit & 7);
      assert.notEqual(checksum(alg, flipped), sum, `bit ${bit}`);
    }
  });
}

test('known answers pin the algorithms (a silent library change would corrupt every pool)', () => {
  assert.equal(checksum('xxh64', Buffer.from('')), 'ef46db3751d8e999');
  assert.equal(checksum('crc32c', Buffer.from('123456789')), 'e3069283');
});
