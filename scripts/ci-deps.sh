#!/usr/bin/env bash
# Test-only system tools, installed when missing; .ci/run calls this before `npm ci`. Idempotent.
#
# systemd-socket-activate (Debian's `systemd`), chromium (the dashboard's browser test), and promtool (Debian's `prometheus` package) is the authority test/control/metrics.test.ts validates /metrics
# with. Without it that test falls back to the parse-prometheus-text-format devDependency plus its own line lint,
# and says so in its output.
set -euo pipefail

# Installs Debian package $1 where apt-get is (as root, or with passwordless sudo); else does nothing.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 0
  local sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo -n)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$1" >/dev/null
}

# A C compiler: `npm ci` builds the native helper with it (scripts/build-native.mjs), which the master's
# tests of orphans, PID 1 and log rotation use, and test/scripts/build-native.test.ts rebuilds.
if ! command -v cc >/dev/null 2>&1; then apt_install gcc; fi
command -v cc >/dev/null 2>&1 && echo "cc: $(command -v cc)"

# python3: test/master/sd-notify.test.ts's datagram listener and test/master/terminal.test.ts's pty.
if ! command -v python3 >/dev/null 2>&1; then apt_install python3; fi
command -v python3 >/dev/null 2>&1 && echo "python3: $(command -v python3)"

# systemd-socket-activate (Debian's `systemd` package) starts test/master/activation.test.ts's masters.
if ! command -v systemd-socket-activate >/dev/null 2>&1; then apt_install systemd; fi
command -v systemd-socket-activate >/dev/null 2>&1 && echo "systemd-socket-activate: $(command -v systemd-socket-activate)"

# ss (Debian's `iproute2`): test/master/activation.test.ts reads an inherited socket's backlog with it.
if ! command -v ss >/dev/null 2>&1; then apt_install iproute2; fi
command -v ss >/dev/null 2>&1 && echo "ss: $(command -v ss)"

# Debian's chromium: test/dashboard/browser.test.ts drives it headless with playwright-core (skipped without it).
if [ ! -x /usr/bin/chromium ]; then apt_install chromium; fi
[ -x /usr/bin/chromium ] && echo "chromium: $(/usr/bin/chromium --version 2>/dev/null)"

if command -v promtool >/dev/null 2>&1; then
  echo "promtool: $(command -v promtool) (already installed)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "promtool: not installed and no apt-get here; the metrics test will validate with its JS parser only" >&2
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "promtool: not installed, and installing the prometheus package needs root (or passwordless sudo)" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# Only promtool is wanted. Where systemd runs (not in most containers, whose policy-rc.d refuses), the package
# starts a Prometheus server on :9090; it was not installed before this script, so stop and disable it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  "${as_root[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

command -v promtool >/dev/null 2>&1 || { echo "promtool: still missing after installing prometheus" >&2; exit 1; }
echo "promtool: $(command -v promtool) ($(promtool --version 2>&1 | head -1))"
