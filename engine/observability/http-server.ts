import http from 'node:http';
import { logger } from './logger.js';
import { parseListen } from '../util/listen.js';

export interface HttpReply {
  status: number;
  type: string;
  body: string;
}

const log = logger('http');

/** A GET/HEAD-only HTTP server over a routing function: the daemon's and the operator's endpoints. */
export async function serveHttp(listen: string, route: (target: string) => Promise<HttpReply>): Promise<http.Server> {
  const { host, port } = parseListen(listen);
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    route(req.url ?? '/').then(
      (r) => res.writeHead(r.status, { 'content-type': r.type }).end(req.method === 'HEAD' ? undefined : r.body),
      (err: unknown) => {
        log.error(`${req.url} failed: ${String(err)}`);
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(err) }) + '\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot listen on ${listen}: ${err.message}`)));
    server.listen(port, host, () => resolve());
  });
  return server;
}
