# git-token-keeper as a container: the daemon for a Kubernetes pod (native sidecar), sharing an
# in-memory volume with the build container, into which it copies the shim at start.
# The final image holds the production dependencies and the build output only, runs as a
# non-root UID and works with a read-only root file system (it writes only to its state dir).

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
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
LABEL org.opencontainers.image.title="git-token-keeper" \
      org.opencontainers.image.description="Keeps short-lived Git tokens fresh for CI builds of any length"
ENV NODE_ENV=production \
    GIT_TOKEN_KEEPER_DIR=/run/git-token-keeper \
    GIT_TOKEN_KEEPER_CONFIG=/etc/git-token-keeper/config.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY shim ./shim
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["node", "/app/dist/cli/main.js", "status"]
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["run", "--log-format", "json"]
