import type { OpObserver } from '../fuse/operations.js';
import type { Pool } from '../pool/pool.js';
import { ERRNO } from '../util/errors.js';
import { logger } from './logger.js';
import { metrics } from './metrics.js';
import { newTraceId, withTrace } from './trace.js';

const ERRNO_NAME = new Map<number, string>(Object.entries(ERRNO).map(([name, n]) => [-n, name]));
const log = logger('fuse');

/**
 * Counts and times every FUSE operation. One slower than `slowMs()` gets a trace id of its own and a
 * timing event (for profiling); EIO is logged as an error with the cause.
 */
export function observeFuse(pool: Pool, slowMs: () => number): OpObserver {
  const name = pool.name;
  return (op, ms, errno, err) => {
    const result = errno === 0 ? 'ok' : (ERRNO_NAME.get(errno) ?? `errno${-errno}`);
    metrics.fuseOps.inc({ pool: name, operation: op, result });
    metrics.fuseSeconds.observe({ pool: name, operation: op }, ms / 1000);
    if (op === 'read') metrics.readSeconds.observe({ pool: name }, ms / 1000);
    else if (op === 'write') metrics.writeSeconds.observe({ pool: name }, ms / 1000);
    if (ms > slowMs()) {
      withTrace(`fuse ${op}`, () => log.event('warn', `slow ${op}: ${ms.toFixed(0)} ms`, { pool: name, operation: op, ms: Math.round(ms), result }), newTraceId());
    }
    if (errno === -ERRNO.EIO) log.error(`${op} failed with EIO: ${err instanceof Error ? err.message : String(err)}`, { pool: name, operation: op });
  };
}
