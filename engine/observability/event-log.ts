import { parse as parseCsv } from 'csv-parse/sync';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import type { LogLevel } from './log-levels.js';

/** A notable event: disk state changes, rebuild and scrub start and end, repairs, errors, slow operations. */
export interface EngineEvent {
  timestamp: string;
  level: Uppercase<LogLevel>;
  component: string;
  message: string;
  trace_id: string | null;
  context: Record<string, unknown>;
}

const LEVEL_RANK: Record<string, number> = { TRACE: 10, DEBUG: 20, INFO: 30, WARN: 40, ERROR: 50, FATAL: 60 };
const CSV_COLUMNS = ['timestamp', 'level', 'component', 'message', 'trace_id', 'context'] as const;

export interface EventFilter {
  minLevel?: string;
  component?: string;
  since?: Date;
  limit?: number;
}

/** A bounded in-memory ring of events, oldest dropped first. */
export class EventLog {
  private ring: (EngineEvent | undefined)[];
  private next = 0;
  private count = 0;
  dropped = 0;

  constructor(private capacity: number) {
    this.ring = new Array<EngineEvent | undefined>(capacity);
  }

  resize(capacity: number): void {
    if (capacity === this.capacity) return;
    const kept = this.list().slice(-capacity);
    this.capacity = capacity;
    this.ring = new Array<EngineEvent | undefined>(capacity);
    this.next = 0;
    this.count = 0;
    for (const e of kept) this.push(e);
  }

  push(e: EngineEvent): void {
    if (this.count === this.capacity) this.dropped++;
    else this.count++;
    this.ring[this.next] = e;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Oldest first. */
  list(filter: EventFilter = {}): EngineEvent[] {
    const out: EngineEvent[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    const min = filter.minLevel ? (LEVEL_RANK[filter.minLevel.toUpperCase()] ?? 0) : 0;
    const since = filter.since?.getTime();
    for (let i = 0; i < this.count; i++) {
      const e = this.ring[(start + i) % this.capacity] as EngineEvent;
      if (LEVEL_RANK[e.level] < min) continue;
      if (filter.component && e.component !== filter.component) continue;
      if (since !== undefined && Date.parse(e.timestamp) < since) continue;
      out.push(e);
    }
    return filter.limit ? out.slice(-filter.limit) : out;
  }
}

export function isEventLevel(s: string): boolean {
  return s.toUpperCase() in LEVEL_RANK;
}

export function toJsonLines(events: EngineEvent[]): string {
  return events.map((e) => JSON.stringify(e)).join('\n') + (events.length ? '\n' : '');
}

export function fromJsonLines(text: string): EngineEvent[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as EngineEvent);
}

/** RFC 4180 CSV with a header; the context column holds the context as JSON. */
export function toCsv(events: EngineEvent[]): string {
  return stringifyCsv(
    events.map((e) => [e.timestamp, e.level, e.component, e.message, e.trace_id ?? '', JSON.stringify(e.context)]),
    { header: true, columns: [...CSV_COLUMNS], record_delimiter: 'windows' },
  );
}

export function fromCsv(text: string): EngineEvent[] {
  const rows = parseCsv(text, { columns: true, skip_empty_lines: true }) as Record<(typeof CSV_COLUMNS)[number], string>[];
  return rows.map((r) => {
    if (r.timestamp === undefined || r.context === undefined)
      throw new Error('not an event CSV: expected the columns ' + CSV_COLUMNS.join(','));
    return {
      timestamp: r.timestamp,
      level: r.level as EngineEvent['level'],
      component: r.component,
      message: r.message,
      trace_id: r.trace_id || null,
      context: JSON.parse(r.context || '{}') as Record<string, unknown>,
    };
  });
}
