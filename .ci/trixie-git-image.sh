#!/usr/bin/env bash
# Builds gtk-trixie-git:<hash of this script>: Debian trixie (minbase) with the newest git
# Debian ships (2.47) and git-lfs, for the tests that run the shim and helper against it
# (test/deploy/newest-git.test.ts). A changed script is a new tag, so a machine that kept an
# older image builds the new one.
# The tests bring their own Node.js (the `node` dev dependency) through the mounted checkout.
set -euo pipefail
tag=gtk-trixie-git:$(sha256sum "$0" | cut -c1-12)
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "trixie-git-image: $tag exists"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "trixie-git-image: debootstrap trixie (minbase) with git"
debootstrap --variant=minbase --include=git,git-lfs,ca-certificates,openssl,busybox,shellcheck trixie "$work/rootfs" http://deb.debian.org/debian >"$work/log" 2>&1 || {
  tail -n 20 "$work/log" >&2
  exit 1
}
chroot "$work/rootfs" /bin/sh -c 'apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/*'
tar -C "$work/rootfs" -c . | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["bash"]' - "$tag" >/dev/null
echo "trixie-git-image: $tag built ($(docker run --rm "$tag" git --version))"
