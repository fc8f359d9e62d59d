import { parentPort } from 'node:worker_threads';
import { checksum, type ChecksumAlgorithm } from './checksum.js';

interface Job { id: number; alg: ChecksumAlgorithm; buffer: SharedArrayBuffer; offset: number; length: number }

parentPort?.on('message', (job: Job) => {
  parentPort?.postMessage({ id: job.id, sum: checksum(job.alg, Buffer.from(job.buffer, job.offset, job.length)) });
});
