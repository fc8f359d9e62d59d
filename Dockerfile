# syntax=docker/dockerfile:1
# Two images from one build:
#   docker build --target node     -t dynamicfs/node:0.1.0 .       engine daemons, node agent, CSI plugin
#   docker build --target operator -t dynamicfs/operator:0.1.0 .   the operator (non-root)
# Probes are HTTP endpoints (/healthz, /readyz) the chart declares; the images have no HEALTHCHECK.
ARG NODE_VERSION=26

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
# better-sqlite3 and @ronomon/reed-solomon compile their native parts here.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY types ./types
COPY engine ./engine
COPY csi-driver ./csi-driver
COPY operator ./operator
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --no-audit --no-fund

# What both images share: the production node_modules and the compiled code.
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/dynamicfs/dynamicfs"
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
ENV NODE_ENV=production

FROM runtime AS node
LABEL org.opencontainers.image.title="dynamicfs-node" \
      org.opencontainers.image.description="DynamicFS engine daemons, node agent and CSI plugin"
RUN apt-get update \
 && apt-get install -y --no-install-recommends fuse libfuse2 util-linux mount tini \
 && rm -rf /var/lib/apt/lists/*
COPY csi-driver/proto ./csi-driver/proto
COPY bin ./bin
ENV PATH="/app/bin:${PATH}"
# FUSE and bind mounts need root on the node (the chart runs this image privileged).
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/operator/src/main.js", "node"]

FROM runtime AS operator
LABEL org.opencontainers.image.title="dynamicfs-operator" \
      org.opencontainers.image.description="DynamicFS operator: reconciles DynamicFSPool and DynamicFSConfig"
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/operator/src/main.js", "run"]
