import { LocalCluster } from '../helpers/local-cluster.js';

// npm run local-cluster: the end-to-end stack for a person to try; Ctrl-C stops it cleanly.
const c = await LocalCluster.start(process.env.NODE_NAME ?? 'local-node');
if (!c) {
  process.stderr.write('the control-plane fixtures are not built: run test/fixtures/build (needs Go)\n');
  process.exit(1);
}
process.stdout.write(
  [
    `DynamicFS local cluster is up (node ${c.nodeName}).`,
    `  export KUBECONFIG=${c.cp.kubeconfig}`,
    `  pools live in ${c.stateDir}/pools; the CSI socket is ${c.csiSocket}`,
    '  kubectl apply -f examples/ (edit nodeName and disk paths first); kubectl get dfp',
    'Ctrl-C stops everything and removes the state.',
    '',
  ].join('\n'),
);
await new Promise<void>((resolve) => {
  process.once('SIGINT', () => resolve());
  process.once('SIGTERM', () => resolve());
});
process.stdout.write('stopping ...\n');
await c.stop();
process.exit(0);
