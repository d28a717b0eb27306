#!/usr/bin/env bash
# npm run test:image: builds Dockerfile.amd64 and Dockerfile.arm64v8 with buildah (no Docker daemon, no image
# registry: the Node base comes from base.sh), runs each image's own entry point, user and environment until
# it answers Healthy and scores a photo, and checks what is in the amd64 image. Needs root, buildah,
# qemu-user-static (arm64) and debootstrap; .ci/run installs them. Prints a line per step with its time.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=test/image
PHOTO=node_modules/@vladmandic/face-api/demo/sample1.jpg
FACES_IN_PHOTO=3
# The image as a device gets it: Debian's ffmpeg (about 450 MB with its libraries), Node, onnxruntime-node and
# sharp for one CPU, no dev dependencies: about 1.1 GB. Every platform's onnxruntime, or the dev dependencies, go over.
MAX_IMAGE_MB=${EDGE_INFER_MAX_IMAGE_MB:-1200}
PLATFORMS=${EDGE_INFER_IMAGE_PLATFORMS:-amd64 arm64}

started=$SECONDS
step() { echo "test:image [$((SECONDS - started))s] $*"; }
fail() { echo "test:image FAILED: $*" >&2; exit 1; }

cleanup_actions=()
cleanup() { for ((i = ${#cleanup_actions[@]} - 1; i >= 0; i--)); do eval "${cleanup_actions[i]}" || true; done; }
trap cleanup EXIT

# The module's own process under a launcher (buildah run, chroot): SIGTERM goes to it, as the container runtime
# sends it to the container's first process; a signal to the launcher's whole group would kill it half-way.
module_pid() {
  local pid=$1 child
  while child=$(pgrep -P "$pid" | head -1) && [ -n "$child" ]; do pid=$child; done
  echo "$pid"
}
stop_module() { kill -TERM "$(module_pid "$1")" 2>/dev/null; wait "$1"; }

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# Polls GET / until Healthy (or the process is gone), then scores the photo; prints the detections found.
check_serving() {
  local port=$1 pid=$2 limit=$3 deadline
  deadline=$((SECONDS + limit))
  until [ "$(curl -s --max-time 2 "http://127.0.0.1:$port/" || true)" = Healthy ]; do
    kill -0 "$pid" 2>/dev/null || fail "the module exited before it answered Healthy"
    [ $SECONDS -lt $deadline ] || fail "no Healthy on port $port within ${limit}s"
    sleep 1
  done
  step "GET / answered Healthy"
  local answer
  answer=$(curl -s --max-time "$limit" -H 'content-type: image/jpeg' --data-binary @"$PHOTO" "http://127.0.0.1:$port/score")
  local found
  found=$(node -e 'const a=JSON.parse(process.argv[1]);if(!Array.isArray(a.detections))process.exit(1);console.log(a.detections.length)' "$answer") \
    || fail "/score did not answer detections: $answer"
  [ "$found" -eq "$FACES_IN_PHOTO" ] || fail "/score found $found faces in the photo, not $FACES_IN_PHOTO"
  step "POST /score found the $found faces in the photo"
}

# The entry point, user and environment the image itself names.
image_config() { buildah inspect --type image --format "$2" "$1"; }

build() {
  local arch=$1 dockerfile=$2 image=$3 t0=$SECONDS
  "$HERE/base.sh" "$arch"
  step "building $dockerfile"
  buildah build --isolation chroot --pull=never --layers --format docker -f "$dockerfile" -t "$image" . >"/tmp/edge-infer-build-$arch.log" 2>&1 \
    || { tail -30 "/tmp/edge-infer-build-$arch.log"; fail "buildah build $dockerfile"; }
  [ "$(image_config "$image" '{{.OCIv1.Architecture}}')" = "$arch" ] || fail "$image is not $arch"
  step "built $image ($arch) in $((SECONDS - t0))s"
}

# amd64: buildah run applies the image's user, environment and working folder; the command is its entry point.
run_amd64() {
  local image=$1 port container pid
  port=$(free_port)
  container=$(buildah from --pull=never "$image")
  cleanup_actions+=("buildah rm $container >/dev/null")
  mapfile -t entrypoint < <(image_config "$image" '{{range .OCIv1.Config.Entrypoint}}{{println .}}{{end}}')
  setsid buildah run --isolation chroot --env PORT="$port" "$container" -- "${entrypoint[@]}" >/tmp/edge-infer-run-amd64.log 2>&1 &
  pid=$!
  cleanup_actions+=("stop_module $pid")
  check_serving "$port" "$pid" 120
  # The image's HEALTHCHECK, run as the runtime runs it: in the container, beside the module.
  mapfile -t health < <(image_config "$image" '{{range .Docker.Config.Healthcheck.Test}}{{println .}}{{end}}')
  [ "${health[0]}" = CMD ] || fail "HEALTHCHECK is not an exec form: ${health[*]}"
  buildah run --isolation chroot --env PORT="$port" "$container" -- "${health[@]:1}" || fail "the HEALTHCHECK command failed"
  step "the image's HEALTHCHECK passed"
  stop_module "$pid" || fail "the module did not exit cleanly on SIGTERM (see /tmp/edge-infer-run-amd64.log)"
  step "SIGTERM: the module stopped cleanly"
}

# arm64 under qemu: in a plain chroot of the mounted image with /proc and /dev only. (Debian's qemu-user 7.2
# makes onnxruntime-node's CPU detection crash when the emulated process sees /proc and /sys at once, as inside
# buildah run: a quirk of the emulator, not of the image.)
run_arm64() {
  local image=$1 port container root user uid gid groups pid
  port=$(free_port)
  container=$(buildah from --pull=never "$image")
  cleanup_actions+=("buildah rm $container >/dev/null")
  root=$(buildah mount "$container")
  cleanup_actions+=("buildah umount $container >/dev/null")
  mount -t proc proc "$root/proc" && cleanup_actions+=("umount $root/proc")
  mount --bind /dev "$root/dev" && cleanup_actions+=("umount $root/dev")
  user=$(image_config "$image" '{{.OCIv1.Config.User}}')
  uid=$(awk -F: -v u="$user" '$1 == u { print $3 }' "$root/etc/passwd")
  gid=$(awk -F: -v u="$user" '$1 == u { print $4 }' "$root/etc/passwd")
  groups=$(awk -F: -v u="$user" '$4 ~ "(^|,)" u "(,|$)" { printf "%s%s", sep, $3; sep = "," }' "$root/etc/group")
  mapfile -t env < <(image_config "$image" '{{range .OCIv1.Config.Env}}{{println .}}{{end}}')
  mapfile -t entrypoint < <(image_config "$image" '{{range .OCIv1.Config.Entrypoint}}{{println .}}{{end}}')
  setsid chroot --userspec="$uid:$gid" --groups="$groups" "$root" /usr/bin/env -i -C "$(image_config "$image" '{{.OCIv1.Config.WorkingDir}}')" \
    "${env[@]}" PORT="$port" "${entrypoint[@]}" >/tmp/edge-infer-run-arm64.log 2>&1 &
  pid=$!
  cleanup_actions+=("stop_module $pid")
  check_serving "$port" "$pid" 600
}

# What is in the image: its size, its user, no dev dependencies, no secrets, nothing .dockerignore keeps out.
check_contents() {
  local image=$1 cpu=$2 container root user uid size_mb
  container=$(buildah from --pull=never "$image")
  root=$(buildah mount "$container")
  cleanup_actions+=("buildah rm $container >/dev/null" "buildah umount $container >/dev/null")
  size_mb=$(($(du -sbx "$root" | cut -f1) / 1000000))
  [ "$size_mb" -le "$MAX_IMAGE_MB" ] || fail "the image holds $size_mb MB, over $MAX_IMAGE_MB MB"
  step "image size: $size_mb MB (limit $MAX_IMAGE_MB)"
  user=$(image_config "$image" '{{.OCIv1.Config.User}}')
  uid=$(awk -F: -v u="$user" '$1 == u { print $3 }' "$root/etc/passwd")
  [ -n "$uid" ] && [ "$uid" != 0 ] || fail "the image runs as '$user' (uid '$uid')"
  grep -Eq "^video:[^:]*:[0-9]+:(.*,)?$user(,|$)" "$root/etc/group" || fail "$user is not in the video group"
  local store
  store=$(image_config "$image" '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' | sed -n 's/^EDGE_INFER_STORE=//p')
  [ "$(stat -c %u "$root$store")" = "$uid" ] || fail "$store is not owned by $user"
  step "runs as $user (uid $uid, in video), owning $store"
  local dev
  # Every package the lock marks as needed only for development (typescript, ava, the test data...) is absent.
  local dev_count=0
  for dev in $(node -p 'Object.entries(require("./package-lock.json").packages).filter(([p, v]) => p && v.dev).map(([p]) => p).join(" ")'); do
    [ ! -e "$root/app/$dev" ] || fail "the dev dependency $dev is in the image"
    dev_count=$((dev_count + 1))
  done
  # The native packages are the image's CPU's: npm's --cpu for sharp, the pruned onnxruntime-node for ONNX Runtime.
  [ "$(cd "$root/app/node_modules/onnxruntime-node/bin" && echo */*/*)" = "napi-v6/linux/$cpu" ] || fail "onnxruntime-node holds $(cd "$root/app/node_modules/onnxruntime-node/bin" && echo */*/*), not only linux/$cpu"
  [ "$(cd "$root/app/node_modules/@img" && echo sharp-*linux*)" = "sharp-libvips-linux-$cpu sharp-linux-$cpu" ] || fail "sharp's binaries are $(ls "$root/app/node_modules/@img"), not linux-$cpu"
  step "onnxruntime-node and sharp binaries for linux/$cpu only"
  step "none of the $dev_count dev-only packages of the lock in /app/node_modules"
  [ "$(cd "$root/app" && ls -A | sort | tr '\n' ' ')" = "dist node_modules package.json " ] || fail "/app holds $(ls -A "$root/app")"
  [ "$(ls -A "$root/app/dist")" = src ] || fail "/app/dist holds more than src"
  step "/app holds dist/src, node_modules and package.json only (.dockerignore kept the rest out)"
  # An .npmrc credential line ("//host/:_authToken=...", "_auth=..."), not code that merely names one (import_core_auth = ...).
  # grep's status is 2 when a path is missing even if it matched, so what it prints decides.
  leaked=$(grep -rlsE '(^|:)(_authToken|_auth|_password)[[:space:]]*=' "$root/app" "$root/root" "$root/home" "$root/usr/local/etc" "$root/etc/npmrc" 2>/dev/null || true)
  [ -z "$leaked" ] || fail "npm credentials in the image: $leaked"
  if find "$root/app" "$root/root" "$root/home" -name '*.key' -o -name 'id_*' -o -name '.npmrc' 2>/dev/null | grep -q .; then fail "key files or an .npmrc in the image"; fi
  if image_config "$image" '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' | grep -Eiq '^[^=]*(token|password|secret|_KEYS)='; then fail "a secret in the image's environment"; fi
  step "no credentials, key files or secrets in the environment"
}

command -v buildah >/dev/null || fail "buildah is not installed (apt-get install buildah qemu-user-static debootstrap)"
[ "$(id -u)" = 0 ] || fail "building with buildah's chroot isolation needs root"
[ -f "$PHOTO" ] || fail "$PHOTO is missing: run npm ci first"

for platform in $PLATFORMS; do
  case "$platform" in
    amd64)
      build amd64 Dockerfile.amd64 localhost/edge-infer:test-amd64
      check_contents localhost/edge-infer:test-amd64 x64
      run_amd64 localhost/edge-infer:test-amd64
      ;;
    arm64)
      # arm64 programs run through qemu's binfmt handler: registered here if the machine has not done it.
      if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
        update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
      fi
      [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || fail "no qemu-aarch64 binfmt handler (apt-get install qemu-user-static binfmt-support)"
      build arm64 Dockerfile.arm64v8 localhost/edge-infer:test-arm64v8
      check_contents localhost/edge-infer:test-arm64v8 arm64
      run_arm64 localhost/edge-infer:test-arm64v8
      ;;
    *) fail "unknown platform $platform" ;;
  esac
done
step "passed"
