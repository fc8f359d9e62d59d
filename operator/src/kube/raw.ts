import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(
      `${what}: HTTP ${status}: ${(() => {
        try {
          return (JSON.parse(body) as { message?: string }).message ?? body;
        } catch {
          return body;
        }
      })()}`,
    );
    this.name = 'ApiError';
  }
}

/**
 * JSON over HTTPS to the API server, authenticated from a kubeconfig by client-node. Used for
 * custom resources, Leases and Events, so that every body goes out exactly as written (MicroTime
 * fields included) and every patch names its content type.
 */
export class KubeClient {
  constructor(readonly kc: KubeConfig) {}

  static load(kubeconfig?: string): KubeClient {
    const kc = new KubeConfig();
    if (kubeconfig) kc.loadFromFile(kubeconfig);
    else kc.loadFromDefault();
    return new KubeClient(kc);
  }

  async request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const server = this.kc.getCurrentCluster()?.server;
    if (!server) throw new Error('the kubeconfig names no cluster server');
    const url = new URL(path, server);
    const opts: https.RequestOptions = { method, hostname: url.hostname, port: url.port, path: url.pathname + url.search, headers: {} };
    await this.kc.applyToHTTPSOptions(opts);
    const data = body === undefined ? undefined : JSON.stringify(body);
    opts.headers = {
      ...opts.headers,
      accept: 'application/json',
      ...(data ? { 'content-type': contentType, 'content-length': Buffer.byteLength(data) } : {}),
    };
    return new Promise<T>((resolve, reject) => {
      const req = https.request(opts, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          if ((res.statusCode ?? 500) >= 300) reject(new ApiError(res.statusCode ?? 500, text, `${method} ${path}`));
          else resolve((text ? JSON.parse(text) : {}) as T);
        });
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      if (data) req.write(data);
      req.end();
    });
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** JSON merge patch (RFC 7386). */
  mergePatch<T>(path: string, patch: unknown): Promise<T> {
    return this.request<T>('PATCH', path, patch, 'application/merge-patch+json');
  }
}

export function isStatus(err: unknown, code: number): boolean {
  return err instanceof ApiError && err.status === code;
}
