# git-token-keeper as a container: the daemon for a Kubernetes pod (native sidecar), sharing an
# in-memory volume with the build container, into which it copies the shim at start.
# The final image holds the production dependencies and the build output only, runs as a
# non-root UID and works with a read-only root file system: it writes only to its state dir,
# a folder it creates inside /run/git-token-keeper (give that a tmpfs: docker run --tmpfs
# /run/git-token-keeper, or an emptyDir with medium: Memory). That folder is 1777 because a
# tmpfs docker mounts over an existing folder takes the folder's mode (owned by root): so the
# keeper's uid can create its state dir there. tini is PID 1, so that children of the exec
# provider that outlive their parent are reaped.

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
# --ignore-scripts: the image's own Node.js builds; the `node` dev dependency is not needed.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
RUN node node_modules/typescript/bin/tsc -p tsconfig.json

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Only what Node.js loads on Linux is kept (about 79 MB down to 27): source maps, type
# declarations and TypeScript sources (Node.js never strips types under node_modules), docs,
# and the builds for browsers, React Native and workerd go.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && find node_modules -type f \( -name '*.map' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.md' \) -delete \
 && find node_modules -type d \( -path '*/dist/browser' -o -path '*/dist/react-native' -o -path '*/dist/workerd' -o -path '*/dist-browser' \) -prune -exec rm -rf {} + \
 && find node_modules -type d -empty -delete

FROM node:24-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/git-token-keeper \
 && chmod 1777 /run/git-token-keeper
LABEL org.opencontainers.image.title="git-token-keeper" \
      org.opencontainers.image.description="Keeps short-lived Git tokens fresh for CI builds of any length"
ENV NODE_ENV=production \
    GIT_TOKEN_KEEPER_DIR=/run/git-token-keeper/state \
    GIT_TOKEN_KEEPER_CONFIG=/etc/git-token-keeper/config.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY shim ./shim
USER 10001:10001
# The probe is POSIX sh (heartbeat and status.json, as `status` judges them): no Node.js start.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["/app/shim/git-token-keeper-probe"]
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "node", "/app/dist/cli/main.js"]
CMD ["run", "--log-format", "json"]
