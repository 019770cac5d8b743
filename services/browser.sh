#!/usr/bin/env bash
# The browser check of the operator's screens (test/browser/operator-ui.browser.ts): Chromium from
# Debian's packages, driven by playwright-core. `npm run test:browser` runs `test`.
#
#   services/browser.sh install   install Chromium (apt-get install -y chromium) when /usr/bin/chromium is missing
#   services/browser.sh test      install, start the npm start stack when a part of it is not running, run the check
#
# Nothing is downloaded from the internet but Debian's package: Playwright's own browser download
# (`playwright install`) is never used. CHROMIUM_PATH points at another Chromium binary.
# Screenshots and report.json go to .stack/artifacts/browser/ (git-ignored).
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

install() {
  if [[ -x $CHROMIUM ]]; then
    # Debian's launcher script prints a harmless shell warning on some machines: only the version line counts.
    say "chromium: $("$CHROMIUM" --version 2>/dev/null || echo "present at $CHROMIUM")"
    return 0
  fi
  [[ $CHROMIUM == /usr/bin/chromium ]] || die "no Chromium at CHROMIUM_PATH=$CHROMIUM"
  command -v apt-get >/dev/null || die "no /usr/bin/chromium and no apt-get: install Chromium with your system's packages, or set CHROMIUM_PATH"
  local -a as_root=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "installing Chromium needs root: run 'apt-get install -y chromium' as root (or install sudo)"
    as_root=(sudo)
  fi
  say "==> installing Chromium from Debian's packages (apt-get install -y chromium)"
  if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; then
    say "==> apt-get install failed; updating the package lists and trying again"
    "${as_root[@]}" apt-get update
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
  fi
  [[ -x $CHROMIUM ]] || die "apt-get installed chromium but there is no $CHROMIUM"
  say "chromium: $("$CHROMIUM" --version 2>/dev/null || echo installed)"
}

# Everything `npm start` runs: the four services and the four processes of this clone.
stack_is_up() {
  local status name
  status=$(bash "$SCRIPT_DIR/app.sh" status 2>/dev/null) || return 1
  for name in temporal kafka postgres mailpit worker ingress relay codec-server; do
    grep -qE "^$name +running" <<<"$status" || { say "$name is not running"; return 1; }
  done
}

run_test() {
  install
  cd "$REPO_ROOT"
  if stack_is_up; then
    say "==> the npm start stack is running"
  else
    say "==> starting the stack (npm start: services, worker, ingress, relay, codec server, demo org)"
    bash "$SCRIPT_DIR/app.sh" up
  fi
  say "==> browser check (test/browser/operator-ui.browser.ts)"
  CHROMIUM_PATH=$CHROMIUM npx tsx test/browser/operator-ui.browser.ts
}

case ${1:-help} in
  install) install ;;
  test) run_test ;;
  *) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; [[ ${1:-help} == help ]] || exit 2 ;;
esac
