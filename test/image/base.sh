#!/usr/bin/env bash
# Makes the Node base image the Dockerfiles name, from parts this machine can reach (no image registry does):
# Debian bookworm from debootstrap, Node from the npm package node-linux-<cpu>, npm from the npm package,
# tagged locally under the FROM names. The root file system is cached under $CACHE, so a later run only
# imports it again.
#   base.sh amd64|arm64
set -euo pipefail
arch=$1
CACHE=${EDGE_INFER_IMAGE_CACHE:-/var/cache/edge-infer-image}
NODE_MAJOR=22
case "$arch" in
  amd64) cpu=x64; names=(docker.io/library/node:22-bookworm-slim docker.io/amd64/node:22-bookworm-slim) ;;
  arm64) cpu=arm64; names=(docker.io/arm64v8/node:22-bookworm-slim) ;;
  *) echo "base.sh: amd64 or arm64, not $arch" >&2; exit 2 ;;
esac

if buildah inspect --type image "${names[0]}" >/dev/null 2>&1; then echo "base $arch: ${names[0]} is there"; exit 0; fi

mkdir -p "$CACHE"
rootfs_tar="$CACHE/bookworm-node$NODE_MAJOR-$arch.tar"
if [ ! -s "$rootfs_tar" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # The mirror and apt settings this machine uses, so that apt-get inside a build reaches the same packages.
  mirror=$(grep -hm1 '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | awk '{print $2}')
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "base $arch: debootstrap from the machine's Debian mirror"
  debootstrap --variant=minbase --arch "$arch" bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  cp /etc/apt/sources.list.d/*.sources "$work/rootfs/etc/apt/sources.list.d/" 2>/dev/null || true
  rm -f "$work/rootfs/etc/apt/sources.list.d/nodesource.sources"
  cp /etc/apt/apt.conf.d/99artifact-registry "$work/rootfs/etc/apt/apt.conf.d/" 2>/dev/null || true
  [ -s "$work/rootfs/etc/apt/sources.list.d/debian.sources" ] && rm -f "$work/rootfs/etc/apt/sources.list"
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*

  echo "base $arch: Node $NODE_MAJOR and npm from their npm packages"
  (cd "$work" && npm pack --silent "node-linux-$cpu@$NODE_MAJOR" "npm@10" >/dev/null)
  mkdir -p "$work/node" "$work/rootfs/usr/local/lib/node_modules/npm" "$work/rootfs/usr/local/etc"
  tar -xzf "$work"/node-linux-"$cpu"-*.tgz -C "$work/node"
  install -m 755 "$work/node/package/bin/node" "$work/rootfs/usr/local/bin/node"
  tar -xzf "$work"/npm-*.tgz -C "$work/rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"
  # npm inside a build reaches the registry this machine uses, trusting the same CAs (without them it hangs).
  cafile=$(npm config get cafile 2>/dev/null || true)
  if [ -n "$cafile" ] && [ "$cafile" != null ] && [ -s "$cafile" ]; then cp "$cafile" "$work/rootfs/usr/local/etc/build-ca.pem"; fi
  echo "registry=$(npm config get registry)" >"$work/rootfs/usr/local/etc/npmrc"
  tar -C "$work/rootfs" -cf "$rootfs_tar.partial" . && mv "$rootfs_tar.partial" "$rootfs_tar"
fi

echo "base $arch: importing $rootfs_tar"
container=$(buildah from --arch "$arch" scratch)
mountpoint=$(buildah mount "$container")
tar -C "$mountpoint" -xf "$rootfs_tar"
env=(--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env NODE_VERSION="$NODE_MAJOR")
if [ -s "$mountpoint/usr/local/etc/build-ca.pem" ]; then env+=(--env NODE_EXTRA_CA_CERTS=/usr/local/etc/build-ca.pem); fi
buildah umount "$container" >/dev/null
buildah config --os linux --arch "$arch" "${env[@]}" --cmd node "$container"
buildah commit --quiet --rm "$container" "${names[0]}" >/dev/null
for name in "${names[@]:1}"; do buildah tag "${names[0]}" "$name"; done
echo "base $arch: tagged ${names[*]}"
