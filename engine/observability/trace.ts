import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';

/** The request a piece of work belongs to: a CLI command, a slow FUSE operation, a scrub, a CSI call. */
export interface TraceContext {
  traceId: string;
  entry: string;
}

const storage = new AsyncLocalStorage<TraceContext>();

export function newTraceId(): string {
  return randomBytes(8).toString('hex');
}

/** Runs `fn` with a trace context; every log line written inside (awaits included) carries its id. */
export function withTrace<T>(entry: string, fn: () => T, traceId: string = newTraceId()): T {
  return storage.run({ traceId, entry }, fn);
}

export function currentTrace(): TraceContext | undefined {
  return storage.getStore();
}
