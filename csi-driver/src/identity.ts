import { DRIVER_NAME, type PluginContext } from './context.js';
import type { IdentityService } from './proto.js';

export function identityService(ctx: PluginContext): IdentityService {
  return {
    async GetPluginInfo() {
      return { name: DRIVER_NAME, vendor_version: ctx.version, manifest: { node: ctx.nodeId } };
    },
    async GetPluginCapabilities() {
      return {
        capabilities: [
          { service: { type: 'CONTROLLER_SERVICE' } },
          { service: { type: 'VOLUME_ACCESSIBILITY_CONSTRAINTS' } },
          { volume_expansion: { type: 'ONLINE' } },
        ],
      };
    },
    async Probe() {
      const r = await ctx.engines.ready();
      return { ready: { value: r.ready } };
    },
  };
}
