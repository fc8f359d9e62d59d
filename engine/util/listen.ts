import net from 'node:net';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Why `listen` is not a usable `HOST:PORT` (IPv4, [IPv6], a host name, or empty for every interface), or null. */
export function listenProblem(listen: string): string | null {
  const m = /^(.*):([0-9]{1,5})$/.exec(listen);
  if (!m) return `'${listen}' is not HOST:PORT (such as 127.0.0.1:9090)`;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return `port ${m[2]} of '${listen}' is not from 1 to 65535`;
  const host = m[1];
  if (host === '') return null;
  if (host.startsWith('[')) return host.endsWith(']') && net.isIPv6(host.slice(1, -1)) ? null : `'${host}' is not a bracketed IPv6 address`;
  if (/^[0-9.]+$/.test(host)) return net.isIPv4(host) ? null : `'${host}' is not an IPv4 address`;
  return HOSTNAME.test(host) ? null : `'${host}' is not a host name or address`;
}

/** Parses `host:port` (an empty host means every interface); throws naming what is wrong. */
export function parseListen(listen: string): { host: string; port: number } {
  const problem = listenProblem(listen);
  if (problem) throw new Error(`listen address ${problem}`);
  const m = /^(.*):(\d+)$/.exec(listen) as RegExpExecArray;
  return { host: m[1].replace(/^\[|\]$/g, '') || '0.0.0.0', port: Number(m[2]) };
}

/** Whether a listen address reaches only this host (127.0.0.0/8, ::1, localhost). */
export function isLoopbackListen(listen: string): boolean {
  const { host } = parseListen(listen);
  return host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));
}
