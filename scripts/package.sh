#!/usr/bin/env bash
# Make the relocatable tarball: sluice-VERSION-Linux-x86_64.tar.gz (CPack), the install
# tree of cmake/SluiceInstall.cmake in one folder of that name. Unpack it anywhere and put
# its bin/ on PATH: the programs find their own libraries through $ORIGIN, and libslurm
# (dlopen) and libmpi (sluice-mpi) are the site's, found when they run (docs/install.md).
#
#   scripts/package.sh [--no-build] [--output DIR]
#
#   (default)     build first (scripts/build.sh --quiet), then package from build/
#   --no-build    package what build/ holds now (everything must be built)
#   --output DIR  write the tarball there (default: the build folder)
#   SLUICE_BUILD_DIR=DIR  package another build folder
#
# Prints the tarball's path, its size, and `ldd` of its programs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build=1 out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) build=0 ;;
    --output) out="${2:?--output needs a folder}"; shift ;;
    --output=*) out="${1#*=}" ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
dir="$(cd "${SLUICE_BUILD_DIR:-build}" 2>/dev/null && pwd || true)"
(( build )) && { scripts/build.sh --quiet; dir="$(cd "${SLUICE_BUILD_DIR:-build}" && pwd)"; }
if [[ -z "$dir" || ! -f "$dir/CPackConfig.cmake" ]]; then
  echo "package.sh: no configured build in ${SLUICE_BUILD_DIR:-build}/ (run scripts/build.sh)" >&2
  exit 2
fi
out="${out:-$dir}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
log="$out/package.log"

# CPack's own staging folder goes to a temporary one; the tarball to $out.
stage="$(mktemp -d "${TMPDIR:-/tmp}/sluice-package.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
if ! SLUICE_PACKAGING=1 cpack --config "$dir/CPackConfig.cmake" -B "$stage" >"$log" 2>&1; then
  echo "package.sh: cpack failed; the end of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
tarball="$(ls "$stage"/sluice-*.tar.gz)"
mv "$tarball" "$tarball.sha256" "$out"/ 2>/dev/null || mv "$tarball" "$out"/
tarball="$out/$(basename "$tarball")"

echo "package: $tarball ($(du -h "$tarball" | cut -f1), $(stat -c %s "$tarball") bytes)"
grep -E 'Bundling:' "$log" | sed 's/^-- /package: /' || echo "package: no shared library bundled"
tar -xzf "$tarball" -C "$stage"
for p in "$stage"/sluice-*/bin/*; do
  echo "package: ldd bin/$(basename "$p"):"
  ldd "$p" | sed 's/^/    /'
done
