#!/usr/bin/env bash
# npm run test:fresh-machine: the README's test command, `npm ci && npm test`, run as a new user would run it:
# in a fresh Debian bookworm container with Node 22 and nothing else (the stand-in base of base.sh), on the
# committed sources (git archive HEAD), as root, so that npm test's pretest installs the Debian packages itself.
# Needs what test:image needs (root, buildah, debootstrap).
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$SECONDS

test/image/base.sh amd64
container=$(buildah from --pull=never docker.io/library/node:22-bookworm-slim)
trap 'buildah rm "$container" >/dev/null' EXIT
git archive --format=tar HEAD | buildah run --isolation chroot "$container" -- sh -c 'mkdir -p /src && tar -x -C /src'
echo "test:fresh-machine: node $(buildah run --isolation chroot "$container" -- node --version), sources of $(git rev-parse --short HEAD)"
status=0
buildah run --isolation chroot --workingdir /src "$container" -- sh -c 'npm ci --no-audit --no-fund && npm test' || status=$?
echo "test:fresh-machine: npm ci && npm test exited with $status after $((SECONDS - started))s"
exit "$status"
