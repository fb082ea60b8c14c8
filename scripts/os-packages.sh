#!/usr/bin/env bash
# Install Debian/Ubuntu packages that are missing: scripts/os-packages.sh COMMAND:PACKAGE ...
# Each argument names a command (or file) that proves the package is there, and the package.
# Root installs directly, a user through passwordless sudo; otherwise it says what to install.
set -euo pipefail
missing=()
for item in "$@"; do
  probe=${item%%:*}
  package=${item#*:}
  if [[ $probe == /* ]]; then [ -e "$probe" ] && continue; else command -v "$probe" >/dev/null && continue; fi
  missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "os-packages: installing ${missing[*]} ..."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null && command -v apt-get >/dev/null; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "os-packages: missing ${missing[*]}; install them with your package manager" >&2
  exit 2
fi
