import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type GrpcObject, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** csi-driver/proto/csi.proto, found from the compiled file (dist/csi-driver/src) or the source. */
function protoPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../proto/csi.proto'), path.resolve(here, '../../../csi-driver/proto/csi.proto')];
  return candidates.find((c) => existsSync(c)) ?? candidates[1];
}

export interface CsiServices {
  Identity: ServiceDefinition;
  Controller: ServiceDefinition;
  Node: ServiceDefinition;
}

/** Loads the CSI services; int64 as numbers (our sizes stay far below 2^53), enums as names. */
export function loadCsi(): CsiServices {
  const def = loadSync(protoPath(), { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const pkg = (loadPackageDefinition(def).csi as GrpcObject).v1 as GrpcObject;
  const service = (name: string) => (pkg[name] as unknown as { service: ServiceDefinition }).service;
  return { Identity: service('Identity'), Controller: service('Controller'), Node: service('Node') };
}

// The message shapes we read and write (snake_case, as keepCase gives them).
export interface CapacityRange { required_bytes: number; limit_bytes: number }
export interface VolumeCapability {
  block?: Record<string, never> | null;
  mount?: { fs_type: string; mount_flags: string[]; volume_mount_group: string } | null;
  access_mode?: { mode: string } | null;
  access_type?: 'block' | 'mount';
}
export interface Topology { segments: Record<string, string> }
export interface Volume {
  capacity_bytes: number; volume_id: string; volume_context: Record<string, string>; accessible_topology: Topology[];
}
