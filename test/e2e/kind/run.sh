#!/usr/bin/env bash
# kind e2e for hosts with Docker: build the images, load them into a kind cluster, install the chart,
# create a pool on the kind node, run a pod with a PVC, write and read data, check the metrics endpoint.
#   test/e2e/kind/run.sh            (needs docker, kind, kubectl, helm on PATH)
set -euo pipefail
cd "$(dirname "$0")/../../.."
CLUSTER="${KIND_CLUSTER:-dynamicfs-e2e}"
for tool in docker kind kubectl helm; do command -v "$tool" >/dev/null || { echo "kind e2e needs $tool on PATH" >&2; exit 2; }; done
docker info >/dev/null 2>&1 || { echo "kind e2e needs a running Docker engine" >&2; exit 2; }

docker build --target node -t dynamicfs/node:e2e .
docker build --target operator -t dynamicfs/operator:e2e .
mkdir -p /tmp/dynamicfs-kind-disks/{d1,d2,d3}
kind create cluster --name "$CLUSTER" --config test/e2e/kind/kind-config.yaml --wait 120s
trap 'kind delete cluster --name "$CLUSTER"' EXIT
kind load docker-image --name "$CLUSTER" dynamicfs/node:e2e dynamicfs/operator:e2e
NODE="$(kubectl get nodes -o jsonpath='{.items[0].metadata.name}')"

helm install dynamicfs charts/dynamicfs -n dynamicfs --create-namespace --wait --timeout 5m \
  --set images.node.tag=e2e --set images.operator.tag=e2e --set operator.replicas=1 --set 'diskPaths={/mnt/disks}'
kubectl apply -f - <<YAML
apiVersion: dynamicfs.io/v1alpha1
kind: DynamicFSPool
metadata: {name: kind}
spec:
  nodeName: $NODE
  redundancy: replication:2
  # One filesystem inside the kind node: each directory names its own failure domain.
  disks: [{path: /mnt/disks/d1, failureDomain: d1}, {path: /mnt/disks/d2, failureDomain: d2}, {path: /mnt/disks/d3, failureDomain: d3}]
YAML
kubectl wait --for=condition=Ready dynamicfspool/kind --timeout=180s
kubectl apply -f - <<'YAML'
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: dynamicfs-replicated
  resources: {requests: {storage: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  restartPolicy: Never
  containers:
    - name: w
      image: dynamicfs/node:e2e
      imagePullPolicy: Never
      command: [sh, -c, 'head -c 4000000 /dev/urandom > /data/blob && sha256sum /data/blob > /data/blob.sum && sha256sum -c /data/blob.sum']
      volumeMounts: [{name: data, mountPath: /data, mountPropagation: HostToContainer}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
YAML
kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/writer --timeout=180s
kubectl logs writer | grep -q 'blob: OK'
ENGINE="$(kubectl -n dynamicfs get pod -l app.kubernetes.io/component=engine -o jsonpath='{.items[0].metadata.name}')"
kubectl -n dynamicfs exec "$ENGINE" -c engine -- node -e "fetch('http://127.0.0.1:9100/metrics').then(r=>r.text()).then(t=>{if(!/dynamicfs_written_bytes_total\{pool=\"kind\"\} [1-9]/.test(t))process.exit(1)})"
echo "kind e2e: passed"
