#!/usr/bin/env bash
# Builds git's own test suite for the installed git, so that test/git-suite/ can run git's t/
# scripts against the installed git, plainly and through the shim (GIT_TEST_INSTALLED).
# The source is Debian's source package of exactly the installed version (a deb-src entry is
# added for it), built with `make NO_GETTEXT=1`; the tree is handed to an unprivileged user,
# because git's HTTP tests (lib-httpd, Debian's apache2) refuse to run as root.
# Usage: .ci/git-test-suite.sh   (prints the folder; does nothing more when it is built)
set -euo pipefail

user=gtk-git-tests
version=$(dpkg-query -W -f '${Version}' git)
root=/var/tmp/gtk-git-tests/$(printf '%s' "$version" | tr -c 'A-Za-z0-9.\n' '_')
src=$root/src

if [ -f "$root/built" ] && id -u "$user" >/dev/null 2>&1; then
  echo "$src"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Source packages for the suites the machine installs from (bookworm and its updates).
list=/etc/apt/sources.list.d/gtk-git-tests-src.sources
if ! apt-get source --print-uris -qq "git=$version" >/dev/null 2>&1; then
  cat >"$list" <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq >&2
fi
# What the build needs (curl and expat: lib-httpd skips everything in a git built without them),
# and what the HTTP tests run: Debian's apache2.
apt-get install -y -qq dpkg-dev make gcc libc6-dev zlib1g-dev libcurl4-gnutls-dev libexpat1-dev \
  libssl-dev apache2 perl >/dev/null

id -u "$user" >/dev/null 2>&1 || useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin "$user"

rm -rf "$root"
mkdir -p "$root"
cd "$root"
echo "git-test-suite: building git $version's test suite in $src" >&2
apt-get source --download-only -qq "git=$version" >/dev/null 2>&1
dpkg-source -x ./*.dsc src >/dev/null
rm -f ./*.dsc ./*.tar.*
make -C src -j"$(nproc)" NO_GETTEXT=1 NO_TCLTK=1 >"$root/build.log" 2>&1 || {
  tail -n 30 "$root/build.log" >&2
  exit 1
}
chown -R "$user:$user" "$src"
touch "$root/built"
echo "$src"
