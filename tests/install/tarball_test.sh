#!/usr/bin/env bash
# The relocatable tarball (scripts/package.sh) as a cluster user meets it: an unprivileged
# user unpacks it into an empty folder and, with the source and build folders hidden (a
# private mount namespace covers them with empty tmpfs) and the tarball's bin/ the only
# place on PATH with a `sluice`, runs examples/diamond.toml and the map-reduce example
# from the tarball's share/doc/sluice/examples, and `sluice doctor`. Also prints the
# tarball's size and `ldd` of its programs.
#
#   tarball_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src="$(cd "$1" && pwd)" build="$(cd "$2" && pwd)"
source "$(dirname "$0")/unprivileged_user.sh"
need_unprivileged_user
if ! unshare --mount --propagation private true 2>/dev/null; then
  echo "SLUICE-SKIP: no private mount namespace here (unshare --mount) to hide the build tree"
  exit 0
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/sluice-tarball.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
fail() { echo "FAILED: $*"; exit 1; }

SLUICE_BUILD_DIR="$build" "$src/scripts/package.sh" --no-build --output "$tmp/out"
version="$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")"
tarball="$tmp/out/sluice-$version-Linux-$(uname -m).tar.gz"
[[ -f "$tarball" ]] || fail "no $(basename "$tarball") in: $(ls "$tmp/out")"
chmod 644 "$tarball"
mkdir "$tmp/home" "$tmp/unpacked"
chown "$TEST_USER" "$tmp/home" "$tmp/unpacked"
top="$(basename "$tarball" .tar.gz)"

# As the user, in the namespace where the source and build folders are empty.
cat >"$tmp/as_user.sh" <<'SCRIPT'
set -euo pipefail
fail() { echo "FAILED: $*"; exit 1; }
cd "$HOME"
tar -xzf "$TARBALL" -C "$UNPACKED"
bin="$UNPACKED/$TOP/bin"
examples="$UNPACKED/$TOP/share/doc/sluice/examples"
export PATH="$bin:/usr/bin:/bin"
[[ "$(command -v sluice)" == "$bin/sluice" ]] || fail "sluice on PATH is $(command -v sluice)"
if ls "$BUILD_DIR/launchers" >/dev/null 2>&1; then fail "the build tree is reachable"; fi
sluice --version
sluice run "$examples/diamond.toml" -q || fail "diamond.toml failed (exit $?)"
sluice run "$examples/mapreduce.toml" -q || fail "mapreduce.toml failed (exit $?)"
run_id="$(sluice pss | awk '$2 ~ /mapreduce/ { print $1 }')"
sluice results "$run_id" | tee results.txt
grep -Eq 'reduce +total +15' results.txt || fail "mapreduce's total is not 15"
[[ "$(sluice pss | grep -c succeeded)" == 2 ]] || fail "not two succeeded runs"
sluice doctor --timeout 5 | tee doctor.txt
for check in gpus slurm mpi hdf5; do
  grep -Eq "^  (ok|missing) +$check " doctor.txt || fail "sluice doctor says nothing of $check"
done
echo "ok: as $(id -un), from $UNPACKED/$TOP"
SCRIPT
chmod 644 "$tmp/as_user.sh"

# Hide the build folder first: it may be inside the source folder.
unshare --mount --propagation private bash -c '
  set -e
  mount -t tmpfs -o size=1m sluice-hidden "$1"
  [[ "$2" == "$1" ]] || mount -t tmpfs -o size=1m sluice-hidden "$2"
  shift 2
  exec "$@"' _ "$build" "$src" \
  setpriv --reuid "$TEST_USER" --regid "$(id -g "$TEST_USER")" --init-groups \
  env -i LANG=C.UTF-8 HOME="$tmp/home" PATH=/usr/bin:/bin TARBALL="$tarball" \
    UNPACKED="$tmp/unpacked" TOP="$top" BUILD_DIR="$build" \
  bash "$tmp/as_user.sh"
