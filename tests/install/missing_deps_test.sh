#!/usr/bin/env bash
# scripts/build.sh run by a user without root, with dependencies missing: it names each
# missing one and how to point CMake at it, exits 2, and never calls apt. (Two packages
# are hidden from CMake with CMAKE_DISABLE_FIND_PACKAGE_<name>: they are installed here.)
#
#   missing_deps_test.sh SOURCE_DIR
set -euo pipefail
src="$1"
source "$(dirname "$0")/unprivileged_user.sh"
need_unprivileged_user

tmp="$(mktemp -d "${TMPDIR:-/tmp}/sluice-missing-deps.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
chown "$TEST_USER" "$tmp"
# The user works on a copy of the sources: the checkout may sit in a folder only root
# can enter (a CI clone in a mktemp -d is 0700), as a user's own clone would not.
mkdir "$tmp/src"
tar -C "$src" --exclude='./build*' --exclude='./.git' -cf - . | tar -C "$tmp/src" -xf -
chown -R "$TEST_USER" "$tmp/src"

set +e
out="$(as_test_user HOME="$tmp" PATH=/usr/local/bin:/usr/bin:/bin SLUICE_BUILD_DIR="$tmp/build" \
         "$tmp/src/scripts/build.sh" --quiet -DCMAKE_DISABLE_FIND_PACKAGE_tomlplusplus=ON \
         -DCMAKE_DISABLE_FIND_PACKAGE_HDF5=ON 2>&1)"
rc=$?
set -e
echo "$out"
fail() { echo "FAILED: $*"; exit 1; }
(( rc == 2 )) || fail "exit $rc, expected 2 (missing dependencies)"
grep -q 'tomlplusplus: .*libtomlplusplus-dev.*CMAKE_PREFIX_PATH' <<<"$out" ||
  fail "tomlplusplus is not named with its package and CMAKE_PREFIX_PATH"
grep -q 'HDF5: .*HDF5_ROOT' <<<"$out" || fail "HDF5 is not named with HDF5_ROOT"
grep -q 'fmt:' <<<"$out" && fail "fmt is installed, but named missing"
grep -Eq 'apt-get|^E: |dpkg' <<<"$out" && fail "apt was called or its error shown"
echo "ok: the missing dependencies are named, exit 2, no apt"
