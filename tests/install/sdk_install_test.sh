#!/usr/bin/env bash
# The install tree as an SDK user meets it: `cmake --install` into an empty prefix; the
# SDK examples built on their own with find_package(Sluice) and one with pkg-config;
# their runs read back by the installed `sluice`; the bash completion lists the verbs.
#
#   sdk_install_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src="$1" build="$2"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/sluice-sdk-install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*"; exit 1; }
step() { printf '== [%ds] %s\n' "$SECONDS" "$*"; }

prefix="$tmp/prefix"
step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; exit 1; }
for f in bin/sluice include/sluice/sdk.hpp include/sluice/flow.hpp lib/libsluice_sdk.a \
         lib/cmake/Sluice/SluiceConfig.cmake lib/cmake/Sluice/SluiceConfigVersion.cmake \
         lib/cmake/Sluice/SluiceTargets.cmake lib/pkgconfig/sluice.pc \
         share/bash-completion/completions/sluice share/doc/sluice/docs/install.md \
         share/doc/sluice/examples/diamond.toml; do
  [[ -e "$prefix/$f" ]] || fail "$f is not installed"
done
[[ ! -e "$prefix/include/sluice/engine" ]] || fail "the engine's headers are installed"
if grep -q '^SLUICE_WITH_MPI:BOOL=ON' "$build/CMakeCache.txt"; then
  [[ -x "$prefix/bin/sluice-mpi" ]] || fail "bin/sluice-mpi is not installed"
fi

# Only the installed tree: no path into the source or build folder in what a user gets.
if grep -rlF -e "$src/" -e "$build/" "$prefix/lib/cmake" "$prefix/lib/pkgconfig"; then
  fail "the files above name the source or build folder"
fi

# ccache hits across runs need the temporary folder out of its hash.
launcher=() ccache=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache) ccache=(ccache)
  export CCACHE_BASEDIR="$tmp"
fi
# No build type: no optimisation or debug flags, the fastest build of what is checked.
step "the SDK examples, on their own, with find_package(Sluice)"
cmake -S "$src/examples/sdk" -B "$tmp/examples" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE= "${launcher[@]}" >"$tmp/examples.log" 2>&1 &&
  cmake --build "$tmp/examples" -j 2 >>"$tmp/examples.log" 2>&1 ||
  { tail -n 40 "$tmp/examples.log"; fail "the examples do not build against the install tree"; }

mkdir "$tmp/work"
cd "$tmp/work"
sluice() { "$prefix/bin/sluice" --home "$tmp/work/home" "$@"; }
step "train_and_pick_model run --config local, read back by the installed sluice"
"$tmp/examples/train_and_pick_model" --home "$tmp/work/home" run --config local -q
run_id="$(sluice pss | awk 'NR == 2 { print $1 }')"
[[ -n "$run_id" ]] || fail "the installed sluice lists no succeeded run"
sluice results "$run_id" | tee "$tmp/results.txt"
grep -q 'pick_best' "$tmp/results.txt" || fail "no result of pick_best"

step "pkg-config --cflags --libs sluice: two_workers.cpp"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[[ "$(pkg-config --modversion sluice)" == "$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")" ]] ||
  fail "pkg-config --modversion sluice is not the project's version"
# shellcheck disable=SC2046
"${ccache[@]}" c++ "$src/examples/sdk/two_workers.cpp" -o "$tmp/two_workers" \
  $(pkg-config --cflags --libs sluice) || fail "pkg-config's flags do not build an SDK program"
"$tmp/two_workers" --home "$tmp/work/home" run --config inproc -q
[[ "$(sluice pss | grep -c two_workers)" == 1 ]] || fail "the installed sluice misses two_workers' run"

step "bash completion"
verbs="$(bash -c 'source "$1"; _sluice_verbs "$2"' _ \
           "$prefix/share/bash-completion/completions/sluice" "$prefix/bin/sluice" | tr '\n' ' ')"
echo "verbs: $verbs"
for v in run submit doctor results; do
  [[ " $verbs " == *" $v "* ]] || fail "completion misses the verb $v"
done
step "ok"
