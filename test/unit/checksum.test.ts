import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { CHECKSUM_ALGORITHMS, checksum } from '../../engine/integrity/checksum.js';

for (const alg of CHECKSUM_ALGORITHMS) {
  test(`${alg}: stable, hex, and changes on any single bit flip`, () => {
    const data = randomBytes(64 * 1024);
    const sum = checksum(alg, data);
    assert.equal(sum, checksum(alg, Buffer.from(data)));
    assert.match(sum, alg === 'crc32c' ? /^[0-9a-f]{8}$/ : /^[0-9a-f]{16}$/);
    for (const bit of [0, 1, 7, 12345, data.length * 8 - 1]) {
      const flipped = Buffer.from(data);
      flipped[bit >> 3] ^= 1 << (bit & 7);
      assert.notEqual(checksum(alg, flipped), sum, `bit ${bit}`);
    }
  });
}

test('known answers pin the algorithms (a silent library change would corrupt every pool)', () => {
  assert.equal(checksum('xxh3', Buffer.from('')), '2d06800538d394c2');
  assert.equal(checksum('xxh64', Buffer.from('')), 'ef46db3751d8e999');
  assert.equal(checksum('crc32c', Buffer.from('123456789')), 'e3069283');
});
