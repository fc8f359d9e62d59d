import { promises as fsp } from 'node:fs';
import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { logger } from '../../engine/observability/logger.js';
import { withTrace } from '../../engine/observability/trace.js';
import type { PluginContext } from './context.js';
import { controllerService } from './controller.js';
import { toServiceError } from './errors.js';
import { identityService } from './identity.js';
import { nodeService } from './node.js';
import { loadCsi } from './proto.js';

const log = logger('csi');

/** Async handlers by method name: a service as proto.ts types it (AsyncService), each method taking its own request. */
type Handlers = Record<string, ((req: never) => Promise<object>) | undefined>;

/** gRPC handlers from async functions: each call gets a trace id, a log line, and its error mapped to a status. */
function implement(def: ServiceDefinition, handlers: Handlers): UntypedServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  for (const method of Object.keys(def)) {
    const fn = handlers[method];
    impl[method] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      if (!fn) {
        callback({ code: status.UNIMPLEMENTED, details: `${method} is not implemented by ${'csi.dynamicfs.io'}` });
        return;
      }
      void withTrace(`csi ${method}`, async () => {
        const started = Date.now();
        try {
          // The request as grpc-js decoded it with the service's definition: the type the handler declares.
          const value = await fn(call.request as never);
          log.debug(`${method} ok`, { method, ms: Date.now() - started });
          callback(null, value);
        } catch (err) {
          const e = toServiceError(err);
          log.info(`${method} failed: ${e.details}`, { method, code: status[e.code ?? status.INTERNAL], ms: Date.now() - started });
          callback(e);
        }
      });
    };
  }
  return impl;
}

/** Serves Identity, Controller and Node on `endpoint` (unix:///path/csi.sock). */
export async function serveCsi(endpoint: string, ctx: PluginContext): Promise<Server> {
  const m = /^unix:\/\/(\/.+)$/.exec(endpoint) ?? /^unix:(\/.+)$/.exec(endpoint);
  if (!m) throw new Error(`--endpoint '${endpoint}' must be unix:///absolute/path.sock`);
  await fsp.rm(m[1], { force: true });
  const csi = loadCsi();
  const server = new Server();
  server.addService(csi.Identity, implement(csi.Identity, identityService(ctx)));
  server.addService(csi.Controller, implement(csi.Controller, controllerService(ctx)));
  server.addService(csi.Node, implement(csi.Node, nodeService(ctx)));
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${m[1]}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  return server;
}
