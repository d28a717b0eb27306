#!/usr/bin/env bash
# npm test's pretest: the Debian packages the tests use. Run as root, it installs the missing ones; otherwise
# it stops at once with the one apt-get line to run.
#   fonts-dejavu-core, fontconfig  the OCR direction test draws its text with the DejaVu fonts
#   openssl                        TLS certificates for the HTTPS and edgeHub tests
#   ffmpeg                         the module reads cameras with it
#   python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{base,good,ugly}
#                                  the tests' RTSP camera (test/support/rtsp-server.py, H.264 from x264enc)
#   chromium                       the LAN status page test drives it with playwright-core (test/ui.test.ts)
set -uo pipefail
packages=(fonts-dejavu-core fontconfig openssl ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly chromium)
line="apt-get install -y --no-install-recommends ${packages[*]}"

if ! command -v dpkg >/dev/null; then
  echo "pretest: the tests need Debian's packages (or their equivalents): $line" >&2
  exit 1
fi
missing=()
for package in "${packages[@]}"; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "pretest: the tests need Debian packages that are not installed. Run, then npm test again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "pretest: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
