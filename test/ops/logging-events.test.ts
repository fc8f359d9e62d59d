import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventLog, fromCsv, fromJsonLines, toCsv, toJsonLines, type EngineEvent } from '../../engine/observability/event-log.js';
import { configureLogging, events, logger } from '../../engine/observability/logger.js';
import { withTrace } from '../../engine/observability/trace.js';

function ev(i: number, over: Partial<EngineEvent> = {}): EngineEvent {
  return {
    timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    level: 'INFO',
    component: i % 2 ? 'scrub' : 'pool',
    message: `event ${i}`,
    trace_id: i % 3 ? `t${i}` : null,
    context: { i },
    ...over,
  };
}

test('the event log keeps the newest events up to its capacity and filters by level, component and time', () => {
  const log = new EventLog(5);
  for (let i = 0; i < 8; i++) log.push(ev(i, { level: i === 6 ? 'ERROR' : 'INFO' }));
  assert.deepEqual(
    log.list().map((e) => e.message),
    ['event 3', 'event 4', 'event 5', 'event 6', 'event 7'],
  );
  assert.equal(log.dropped, 3);
  assert.deepEqual(
    log.list({ minLevel: 'warn' }).map((e) => e.message),
    ['event 6'],
  );
  assert.deepEqual(
    log.list({ component: 'scrub' }).map((e) => e.message),
    ['event 3', 'event 5', 'event 7'],
  );
  assert.deepEqual(
    log.list({ since: new Date(Date.UTC(2026, 0, 1, 0, 0, 6)) }).map((e) => e.message),
    ['event 6', 'event 7'],
  );
  log.resize(2);
  assert.deepEqual(
    log.list().map((e) => e.message),
    ['event 6', 'event 7'],
  );
});

test('events round-trip through JSON lines and CSV, awkward text included', () => {
  const tricky: EngineEvent[] = [
    ev(1),
    ev(2, { message: 'comma, "quotes" and\na line break', context: { path: '/a,b/"c"', nested: { list: [1, 'two'] } } }),
    ev(3, { level: 'WARN', trace_id: null, context: {} }),
    ev(4, { message: 'unicode: é ✓ 日本', component: 'fuse' }),
  ];
  assert.deepEqual(fromJsonLines(toJsonLines(tricky)), tricky);
  const csv = toCsv(tricky);
  assert.match(csv.split('\r\n')[0], /^timestamp,level,component,message,trace_id,context$/);
  assert.deepEqual(fromCsv(csv), tricky);
  assert.deepEqual(fromCsv(toCsv([])), []);
  assert.throws(() => fromCsv('a,b\n1,2\n'), /not an event CSV/);
});

test('log lines carry timestamp, upper-case level, component, message, trace_id and context', () => {
  const lines: string[] = [];
  configureLogging({ level: 'info', format: 'json', eventLogSize: 100 }, { write: (s: string) => void lines.push(s) });
  try {
    const log = logger('test-component');
    log.debug('not written at info');
    withTrace('test', () => log.info('inside a trace', { answer: 42 }), 'abc123');
    log.warn('outside any trace');
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(parsed.length, 2);
    const [a, b] = parsed;
    assert.deepEqual(Object.keys(a).sort(), ['component', 'context', 'level', 'message', 'timestamp', 'trace_id']);
    assert.equal(a.level, 'INFO');
    assert.equal(a.component, 'test-component');
    assert.equal(a.message, 'inside a trace');
    assert.equal(a.trace_id, 'abc123');
    assert.deepEqual(a.context, { answer: 42 });
    assert.equal(new Date(a.timestamp as string).toISOString(), a.timestamp);
    assert.equal(b.level, 'WARN');
    assert.equal(b.trace_id, null);
    // Warnings go to the event log as well; plain info lines do not.
    const kept = events.list({ component: 'test-component' });
    assert.deepEqual(
      kept.map((e) => e.message),
      ['outside any trace'],
    );
  } finally {
    configureLogging({ level: 'warn', format: 'auto' });
  }
});
