import type { OpObserver } from './operations.js';
import { ERRNO } from '../util/errors.js';
import { logger } from '../observability/logger.js';
import type { HotCount, HotSeries } from '../observability/hot-metrics.js';
import { metrics } from '../observability/metrics.js';
import { newTraceId, withTrace } from '../observability/trace.js';

const ERRNO_NAME = new Map<number, string>(Object.entries(ERRNO).map(([name, n]) => [-n, name]));
const log = logger('fuse');
/** ENOSPC is logged at most this often per pool (a full pool refuses every write). */
const NOSPACE_LOG_MS = 30_000;

/**
 * Counts and times every FUSE operation. One slower than `slowMs()` gets a trace id of its own and a
 * timing event (for profiling); EIO is logged as an error with the cause.
 */
export function observeFuse(name: string, slowMs: () => number): OpObserver {
  const perOp = new Map<string, { latency: HotSeries; rw: HotSeries | null; results: Map<number, HotCount> }>();
  const series = (op: string) => {
    let s = perOp.get(op);
    if (!s) {
      const rw = op === 'read' ? metrics.readSeconds : op === 'write' ? metrics.writeSeconds : null;
      s = { latency: metrics.fuseSeconds.with({ pool: name, operation: op }), rw: rw?.with({ pool: name }) ?? null, results: new Map() };
      perOp.set(op, s);
    }
    return s;
  };
  let nospace = 0;
  let nospaceLogged = 0;
  const resultName = (errno: number) => (errno === 0 ? 'ok' : (ERRNO_NAME.get(errno) ?? `errno${-errno}`));
  return (op, ms, errno, err) => {
    const s = series(op);
    const seconds = ms / 1000;
    let count = s.results.get(errno);
    if (!count) {
      count = metrics.fuseOps.with({ pool: name, operation: op, result: resultName(errno) });
      s.results.set(errno, count);
    }
    count.inc();
    s.latency.observe(seconds);
    s.rw?.observe(seconds);
    if (ms > slowMs()) {
      withTrace(
        `fuse ${op}`,
        () =>
          log.event('warn', `slow ${op}: ${ms.toFixed(0)} ms`, {
            pool: name,
            operation: op,
            ms: Math.round(ms),
            result: resultName(errno),
          }),
        newTraceId(),
      );
    }
    if (errno === -ERRNO.EIO)
      log.error(`${op} failed with EIO: ${err instanceof Error ? err.message : String(err)}`, { pool: name, operation: op });
    // Why writes fail for want of space (a full pool, too few disks or failure domains): once a while, with a count.
    if (errno === -ERRNO.ENOSPC) {
      nospace++;
      const now = Date.now();
      if (now - nospaceLogged >= NOSPACE_LOG_MS) {
        log.warn(
          `${op} failed with ENOSPC${nospace > 1 ? ` (${nospace} times since the last report)` : ''}: ${err instanceof Error ? err.message : String(err)}`,
          { pool: name, operation: op },
        );
        nospaceLogged = now;
        nospace = 0;
      }
    }
  };
}
