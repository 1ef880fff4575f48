#!/usr/bin/env bash
# The README's test command: installs the outside tools the tests drive as real peers
# (the list is tests/tools.txt) when they are missing, then runs the whole test suite.
# Arguments go to `cargo test` (for example `tests/run.sh tls` runs the TLS tests only).
# On a machine that already has the tools, plain `cargo test` does the same.
set -euo pipefail
cd "$(dirname "$0")/.."

missing_cmds=()
missing_pkgs=()
while read -r cmd pkg why; do
  case "$cmd" in ''|'#'*) continue ;; esac
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing_cmds+=("$cmd")
    # One package may provide several commands.
    case " ${missing_pkgs[*]-} " in *" $pkg "*) ;; *) missing_pkgs+=("$pkg") ;; esac
    echo "tests/run.sh: '$cmd' is missing; installing Debian package '$pkg' ($why)"
  fi
done < tests/tools.txt

if [ ${#missing_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "tests/run.sh: cannot install ${missing_pkgs[*]}: not root and no sudo." >&2
    echo "Install them as root (apt-get install ${missing_pkgs[*]}) and run this again." >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "tests/run.sh: no apt-get here; install the programs for ${missing_cmds[*]} by hand" >&2
    echo "(Debian packages: ${missing_pkgs[*]}) and run this again." >&2
    exit 1
  fi
  "${SUDO[@]}" apt-get update -qq
  if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
       apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}"; then
    echo "tests/run.sh: apt-get could not install ${missing_pkgs[*]}; see its message above." >&2
    exit 1
  fi
  for cmd in "${missing_cmds[@]}"; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
      echo "tests/run.sh: '$cmd' is still missing after the install; install it by hand." >&2
      exit 1
    fi
  done
fi

exec cargo test "$@"
