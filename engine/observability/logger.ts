import { pino, type Logger as Pino, type DestinationStream } from 'pino';
import type { LogLevel } from './log-levels.js';
import { EventLog, type EngineEvent } from './event-log.js';
import { currentTrace } from './trace.js';

export type LogFormat = 'json' | 'pretty' | 'auto';
export interface LogSettings {
  enabled: boolean;
  level: LogLevel;
  format: LogFormat;
  eventLogSize: number;
}

const DEFAULTS: LogSettings = { enabled: true, level: 'info', format: 'auto', eventLogSize: 10_000 };

/** The process's event log: notable events and every warning or error, newest last. */
export const events = new EventLog(DEFAULTS.eventLogSize);

let root: Pino = build(DEFAULTS, undefined);
let settings: LogSettings = DEFAULTS;

function prettyStream(out: NodeJS.WritableStream): DestinationStream {
  return {
    write(line: string) {
      try {
        const r = JSON.parse(line) as {
          timestamp: string;
          level: string;
          component?: string;
          message: string;
          trace_id?: string | null;
          context?: object;
        };
        const ctx = r.context && Object.keys(r.context).length ? ` ${JSON.stringify(r.context)}` : '';
        out.write(
          `${r.timestamp.slice(11, 23)} ${r.level.padEnd(5)} ${r.component ?? '-'}: ${r.message}${ctx}${r.trace_id ? ` [${r.trace_id}]` : ''}\n`,
        );
      } catch {
        out.write(line);
      }
    },
  };
}

function build(s: LogSettings, dest: DestinationStream | undefined): Pino {
  const pretty = s.format === 'pretty' || (s.format === 'auto' && process.stderr.isTTY);
  const stream = dest ?? (pretty ? prettyStream(process.stderr) : pino.destination({ fd: 2, sync: true }));
  return pino(
    {
      enabled: s.enabled,
      level: s.level,
      base: undefined,
      messageKey: 'message',
      timestamp: () => `,"timestamp":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label.toUpperCase() }) },
      mixin: () => ({ trace_id: currentTrace()?.traceId ?? null }),
    },
    stream,
  );
}

/** Sets level, format and event log size (at start, and again when a daemon reloads its configuration). */
export function configureLogging(next: Partial<LogSettings>, dest?: DestinationStream): void {
  settings = { ...settings, ...next };
  root = build(settings, dest);
  events.resize(settings.eventLogSize);
}

export function logSettings(): LogSettings {
  return settings;
}

type Level = Exclude<LogLevel, 'fatal'>;

/** A component's logger: `log.info('message', { some: 'context' })`. */
export class ComponentLogger {
  constructor(readonly component: string) {}

  private write(level: Level, message: string, context: Record<string, unknown> | undefined, event: boolean): void {
    root[level]({ component: this.component, context: context ?? {} }, message);
    if (event || level === 'warn' || level === 'error') {
      const e: EngineEvent = {
        timestamp: new Date().toISOString(),
        level: level.toUpperCase() as EngineEvent['level'],
        component: this.component,
        message,
        trace_id: currentTrace()?.traceId ?? null,
        context: context ?? {},
      };
      events.push(e);
    }
  }

  trace(message: string, context?: Record<string, unknown>): void {
    this.write('trace', message, context, false);
  }
  debug(message: string, context?: Record<string, unknown>): void {
    this.write('debug', message, context, false);
  }
  info(message: string, context?: Record<string, unknown>): void {
    this.write('info', message, context, false);
  }
  warn(message: string, context?: Record<string, unknown>): void {
    this.write('warn', message, context, true);
  }
  error(message: string, context?: Record<string, unknown>): void {
    this.write('error', message, context, true);
  }
  /** A notable event: logged and kept in the event log whatever its level. */
  event(level: Level, message: string, context?: Record<string, unknown>): void {
    this.write(level, message, context, true);
  }
}

export function logger(component: string): ComponentLogger {
  return new ComponentLogger(component);
}
