#!/usr/bin/env bash
# deps.sh: install every Debian package that building, testing, benchmarking
# and the demo need.  Idempotent: when everything is present it only asks
# dpkg (one call, well under a second) and exits.
set -euo pipefail

packages=(
  # build
  gcc meson ninja-build pkg-config clang-format
  libglib2.0-dev libpq-dev libsqlite3-dev libsecret-1-dev libssh-dev
  libjson-glib-dev libedit-dev
  # the static archives `tusk` links (libedit's own, through libedit-dev)
  libncurses-dev libbsd-dev libmd-dev
  # fuzzing (libFuzzer comes with clang's runtime libraries)
  clang libclang-rt-dev
  # memcheck over the unit tests
  valgrind
  # the test environment and the demo
  postgresql postgresql-contrib gnome-keyring dbus dbus-bin openssh-server
  openssh-client openssl util-linux procps sqlite3 tmux libsecret-tools
)

# One dpkg-query call: every package it reports as installed ("ii"); the
# rest, including names it has never heard of, are missing.
installed=" $(dpkg-query -W -f='${db:Status-Abbrev}|${Package}\n' "${packages[@]}" 2>/dev/null |
  sed -n 's/^ii *|//p' | tr '\n' ' ') "
missing=()
for p in "${packages[@]}"; do
  [[ "$installed" == *" $p "* ]] || missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "deps: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || {
    echo "deps: need root to install ${missing[*]}; run as root or install sudo" >&2
    exit 1
  }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done" >&2
