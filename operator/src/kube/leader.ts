import { logger } from '../../../engine/observability/logger.js';
import { isStatus, type KubeClient } from './raw.js';

const log = logger('leader');

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

/** MicroTime as the API server parses it: RFC 3339 with exactly six fractional digits. */
function microTime(d = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Leader election on a coordination.k8s.io Lease: take it when free or expired, renew it while
 * leading, and step down (the caller exits) when renewing fails for a whole lease duration.
 * Updates carry the resourceVersion, so two candidates never both win.
 */
export class LeaderElector {
  leading = false;
  private stopped = false;

  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
    private readonly name: string,
    readonly identity: string,
    private readonly leaseSeconds = 15,
    private readonly renewMs = 3000,
  ) {}

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases`;
  }

  /** One attempt: true when we hold the lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>(`${this.path}/${this.name}`);
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
      try {
        await this.client.request('POST', this.path, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.name, namespace: this.namespace },
          spec: {
            holderIdentity: this.identity,
            leaseDurationSeconds: this.leaseSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        });
        return true;
      } catch (e) {
        if (isStatus(e, 409)) return false;
        throw e;
      }
    }
    const holder = lease.spec.holderIdentity;
    const renewed = lease.spec.renewTime ? Date.parse(lease.spec.renewTime) : 0;
    const expired = renewed + (lease.spec.leaseDurationSeconds ?? this.leaseSeconds) * 1000 < now.getTime();
    if (holder && holder !== this.identity && !expired) return false;
    const taking = holder !== this.identity;
    lease.spec = {
      ...lease.spec,
      holderIdentity: this.identity,
      leaseDurationSeconds: this.leaseSeconds,
      renewTime: microTime(now),
      ...(taking ? { acquireTime: microTime(now), leaseTransitions: (lease.spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    try {
      await this.client.request('PUT', `${this.path}/${this.name}`, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', ...lease });
      if (taking) log.event('info', `${this.identity} took the lease ${this.namespace}/${this.name}${holder ? ` from ${holder}` : ''}`);
      return true;
    } catch (err) {
      if (isStatus(err, 409)) return false; // someone else updated it first
      throw err;
    }
  }

  /** Blocks until leading, calls onStart, keeps renewing; calls onStop if the lease is lost. */
  async run(onStart: () => void, onStop: () => void): Promise<void> {
    let lastRenew = 0;
    while (!this.stopped) {
      try {
        const ok = await this.tryAcquireOrRenew();
        if (ok) {
          lastRenew = Date.now();
          if (!this.leading) {
            this.leading = true;
            onStart();
          }
        } else if (this.leading) {
          this.leading = false;
          onStop();
          return;
        }
      } catch (err) {
        log.warn(`lease ${this.name}: ${(err as Error).message}`);
        if (this.leading && Date.now() - lastRenew > this.leaseSeconds * 1000) {
          this.leading = false;
          onStop();
          return;
        }
      }
      await new Promise((r) => setTimeout(r, this.renewMs));
    }
  }

  /** Gives the lease up on a clean shutdown, so a standby takes over at once. */
  async release(): Promise<void> {
    this.stopped = true;
    if (!this.leading) return;
    try {
      const lease = await this.client.get<Lease>(`${this.path}/${this.name}`);
      if (lease.spec.holderIdentity !== this.identity) return;
      lease.spec.holderIdentity = '';
      lease.spec.renewTime = microTime(new Date(0));
      await this.client.request('PUT', `${this.path}/${this.name}`, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', ...lease });
    } catch {
      /* it expires by itself */
    }
  }
}
