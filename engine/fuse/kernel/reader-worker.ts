/**
 * A thread that waits in read(2) on /dev/fuse, so that no libuv pool thread does: the pool has 4
 * threads (its size is fixed before our code runs), and the erasure coder, fsyncs and file
 * operations queue there. Requests land in slots of shared memory; the main thread frees a slot
 * when it is done with the request in it.
 */
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { BUSY, type ReaderData, type ReaderMessage } from './reader-slots.js';

const { fd, slots, states } = workerData as ReaderData;
const state = new Int32Array(states);
const views = slots.map((s) => Buffer.from(s));

for (let i = 0; ; i = (i + 1) % views.length) {
  Atomics.wait(state, i, BUSY);
  let n: number;
  try {
    n = fs.readSync(fd, views[i], 0, views[i].length, null);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    // ENOENT: the request was interrupted before we read it; EINTR, EAGAIN: try again.
    if (code === 'ENOENT' || code === 'EINTR' || code === 'EAGAIN') {
      i--;
      continue;
    }
    // ENODEV: unmounted (or the fd closed: EBADF). Nothing more will come.
    parentPort?.postMessage({ end: code } satisfies ReaderMessage);
    break;
  }
  Atomics.store(state, i, BUSY);
  parentPort?.postMessage({ slot: i, length: n } satisfies ReaderMessage);
}
