import { credentials, makeGenericClientConstructor, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadCsi } from '../../csi-driver/src/proto.js';

type Call = (req: object) => Promise<Record<string, unknown>>;
export interface CsiClient {
  identity: Record<string, Call>;
  controller: Record<string, Call>;
  node: Record<string, Call>;
  close(): void;
}

/** A plain gRPC client of a CSI socket, for tests: every method returns a promise; errors carry `code`. */
export function csiClient(socket: string): CsiClient {
  const csi = loadCsi();
  const clients: Client[] = [];
  const wrap = (def: typeof csi.Identity, name: string): Record<string, Call> => {
    const Ctor = makeGenericClientConstructor(def, name);
    const c = new Ctor(`unix://${socket}`, credentials.createInsecure()) as unknown as Record<
      string,
      (req: object, cb: (err: ServiceError | null, res: Record<string, unknown>) => void) => void
    > &
      Client;
    clients.push(c);
    const out: Record<string, Call> = {};
    for (const method of Object.keys(def)) {
      out[method] = (req) => new Promise((resolve, reject) => c[method].call(c, req, (err, res) => (err ? reject(err) : resolve(res))));
    }
    return out;
  };
  return {
    identity: wrap(csi.Identity, 'Identity'),
    controller: wrap(csi.Controller, 'Controller'),
    node: wrap(csi.Node, 'Node'),
    close: () => clients.forEach((c) => c.close()),
  };
}

/** The gRPC status code and details a call ends with (OK and '' when it succeeds). */
export async function grpcError(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (err) {
    return { code: (err as { code: number }).code, details: (err as { details: string }).details };
  }
  return { code: 0, details: '' };
}
