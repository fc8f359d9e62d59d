import { status, type ServiceError } from '@grpc/grpc-js';
import { ControlError, type ControlCode } from '../../engine/control/protocol.js';

/** A gRPC error with the spec's code and a message a person can act on. */
export class CsiError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'CsiError';
  }
}

export const invalid = (msg: string) => new CsiError(status.INVALID_ARGUMENT, msg);
export const notFound = (msg: string) => new CsiError(status.NOT_FOUND, msg);

/**
 * The gRPC status of each control code (codes of older daemons arrive translated: see controlCode in
 * protocol.ts). A daemon that cannot be reached or does not answer is UNAVAILABLE: the CO retries.
 */
export const GRPC_STATUS: Readonly<Record<ControlCode, status>> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  UNIMPLEMENTED: status.UNIMPLEMENTED,
  UNAVAILABLE: status.UNAVAILABLE,
  INTERNAL: status.INTERNAL,
};

/** Maps whatever a handler threw to a gRPC status, by its class and code (never by its message). */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof CsiError) return { code: err.code, details: message, message };
  if (err instanceof ControlError) return { code: GRPC_STATUS[err.code], details: message, message };
  return { code: status.INTERNAL, details: message, message };
}
