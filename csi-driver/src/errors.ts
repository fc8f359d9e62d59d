import { status, type ServiceError } from '@grpc/grpc-js';
import { ControlError } from '../../engine/control/socket.js';

/** A gRPC error with the spec's code and a message a person can act on. */
export class CsiError extends Error {
  constructor(readonly code: status, message: string) {
    super(message);
    this.name = 'CsiError';
  }
}

export const invalid = (msg: string) => new CsiError(status.INVALID_ARGUMENT, msg);
export const notFound = (msg: string) => new CsiError(status.NOT_FOUND, msg);

const ENGINE_CODES: Record<string, status> = {
  INVALID: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  EXISTS: status.ALREADY_EXISTS,
  EXHAUSTED: status.RESOURCE_EXHAUSTED,
  BUSY: status.FAILED_PRECONDITION,
  ENOSPC: status.RESOURCE_EXHAUSTED,
};

/** Maps whatever a handler threw to a gRPC status. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  if (err instanceof CsiError) return { code: err.code, details: err.message, message: err.message };
  if (err instanceof ControlError) {
    const code = (err.code ? ENGINE_CODES[err.code] : undefined) ?? status.INTERNAL;
    return { code, details: err.message, message: err.message };
  }
  const message = err instanceof Error ? err.message : String(err);
  // The engine daemon could not be reached: the caller should retry.
  const code = /cannot reach the daemon|did not answer/.test(message) ? status.UNAVAILABLE : status.INTERNAL;
  return { code, details: message, message };
}
