import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type handleUnaryCall, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { ProtoGrpcType } from './generated/csi.js';
import type { ControllerHandlers } from './generated/csi/v1/Controller.js';
import type { IdentityHandlers } from './generated/csi/v1/Identity.js';
import type { NodeHandlers } from './generated/csi/v1/Node.js';

// The message types come from csi-driver/src/generated, written by `npm run gen:csi` from csi.proto
// (scripts/gen-csi-types.mjs); a unit test fails when they are out of date.
export type { CapacityRange__Output as CapacityRange } from './generated/csi/v1/CapacityRange.js';
export type { Topology__Output as Topology } from './generated/csi/v1/Topology.js';
export type { VolumeCapability__Output as VolumeCapability } from './generated/csi/v1/VolumeCapability.js';
export type { Volume } from './generated/csi/v1/Volume.js';

/** csi-driver/proto/csi.proto, found from the compiled file (dist/csi-driver/src) or the source. */
function protoPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../proto/csi.proto'), path.resolve(here, '../../../csi-driver/proto/csi.proto')];
  return candidates.find((c) => existsSync(c)) ?? candidates[1];
}

/**
 * How the proto is loaded: int64 as numbers (our sizes stay far below 2^53), enums as names, fields
 * snake_case, absent ones as their defaults. The generated types assume exactly these (the generator
 * is run with LOADER_OPTIONS of scripts/gen-csi-types.mjs; the unit test compares the two).
 */
export const CSI_LOADER_OPTIONS = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

export interface CsiServices {
  Identity: ServiceDefinition;
  Controller: ServiceDefinition;
  Node: ServiceDefinition;
}

/** Loads the CSI services. */
export function loadCsi(): CsiServices {
  const def = loadSync(protoPath(), CSI_LOADER_OPTIONS);
  // The one place the loaded package takes its generated type (how proto-loader's generated types are used).
  const v1 = (loadPackageDefinition(def) as unknown as ProtoGrpcType).csi.v1;
  return { Identity: v1.Identity.service, Controller: v1.Controller.service, Node: v1.Node.service };
}

/** A unary handler written as an async function: the request (as loaded) in, the response out. */
export type AsyncUnary<H> = H extends handleUnaryCall<infer Req, infer Res> ? (req: Req) => Promise<Res> : never;

/**
 * A service implemented by async functions: any of its methods (the others answer UNIMPLEMENTED),
 * each typed from the generated handlers.
 */
export type AsyncService<H> = { [M in keyof H as string extends M ? never : M]?: AsyncUnary<H[M]> };

export type IdentityService = AsyncService<IdentityHandlers>;
export type ControllerService = AsyncService<ControllerHandlers>;
export type NodeService = AsyncService<NodeHandlers>;
