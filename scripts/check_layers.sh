#!/usr/bin/env bash
# Checks the include rule of docs/architecture.md; prints every violation and exits 1 if
# there is one, 0 otherwise. Run by ctest as `unit:layers` (tests/layout/).
#
#   scripts/check_layers.sh [ROOT]        ROOT defaults to this checkout
#
#   SDK headers    (core/include/sluice/*.hpp, launchers/sdk/include/sluice/*.hpp) include
#                  only SDK headers, the standard library and third-party headers
#   engine headers (core/include/sluice/engine/*.hpp) only SDK and engine headers of core
#   core/          nothing from backends/ or launchers/ (its CMakeLists.txt links neither)
#   backends/B/    core's public headers, its own files and backends/common/; another
#                  backend's headers or libraries only along an edge of ALLOWED_EDGES
#   launchers/     anything
#   no include climbs out of its folder with "../" (in core/, backends/, launchers/sdk/)
#
# Quoted includes are resolved as the compiler would (the including file's folder, then the
# folders on the include path); a bare name such as "local_backend.hpp", which the build
# finds through a linked library's include folder, is resolved to the backend folder that
# holds it. The SDK headers compiling on their own is checked by the build (tests/layout).
set -euo pipefail

# Backend to backend edges, each with its reason; every other one is a violation.
# Keep this list and the table in docs/architecture.md the same.
ALLOWED_EDGES=(
  "pilot slurm"  # allocations are Slurm jobs, submitted through its SlurmDriver and job scripts;
                 # mode=auto wraps the slurm backend
  "pilot local"  # a pilot worker starts attempts through the local backend
  "mpi local"    # an MPI worker rank starts command attempts through the local backend
  "common local" # the worker runtime of mpi and pilot (worker_runtime.cpp) runs its attempts
                 # in a local backend it owns
)

root="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
cd "$root"

violations=0
violation() {
  echo "layers: $1" >&2
  violations=$((violations + 1))
}

allowed_edge() {
  local edge
  for edge in "${ALLOWED_EDGES[@]}"; do
    [[ "$edge" == "$1 $2" ]] && return 0
  done
  return 1
}

# FILE's #include targets as "LINE<TAB>NAME", quoted and angled alike (comments skipped).
includes_of() {
  awk '/^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]/ {
         name = $0
         sub(/^[^"<]*["<]/, "", name)
         sub(/[">].*$/, "", name)
         print FNR "\t" name
       }' "$1"
}

sdk_dirs=(core/include launchers/sdk/include)
is_sdk_header() {  # NAME as included, e.g. sluice/flow.hpp
  [[ "$1" == sluice/*.hpp && "$1" != sluice/*/* ]] || return 1
  [[ -f "core/include/$1" || -f "launchers/sdk/include/$1" ]]
}
is_core_sdk_header() { [[ "$1" == sluice/*.hpp && "$1" != sluice/*/* && -f "core/include/$1" ]]; }
is_engine_header() { [[ "$1" == sluice/engine/*.hpp && -f "core/include/$1" ]]; }

# The backend folder (common, local, ...) holding each header, by the name it is included as.
declare -A header_owner=()
while IFS= read -r path; do
  rest="${path#backends/}"
  header_owner["${rest#*/}"]="${rest%%/*}"
done < <(find backends -mindepth 2 -type f \( -name '*.hpp' -o -name '*.h' \) | sort -r)

# 0. No "../" in an include anywhere below: it would step around every rule that follows.
while IFS= read -r file; do
  while IFS=$'\t' read -r line name; do
    [[ "$name" == *../* ]] &&
      violation "$file:$line: includes '$name' through '../' (use the include folders of core or of a linked library)"
  done < <(includes_of "$file")
done < <(find core backends launchers/sdk -type f \( -name '*.hpp' -o -name '*.cpp' -o -name '*.h' -o -name '*.cu' \) | sort)

# 1. SDK headers: SDK headers and non-Sluice headers only.
for file in core/include/sluice/*.hpp launchers/sdk/include/sluice/*.hpp; do
  while IFS=$'\t' read -r line name; do
    if [[ "$name" == sluice/* ]]; then
      is_sdk_header "$name" ||
        violation "$file:$line: SDK header includes '$name', which is not an SDK header"
    elif [[ -f "${file%/*}/$name" || -n "${header_owner[$name]:-}" ||
            -f "core/src/$name" || -f "launchers/$name" ]]; then
      violation "$file:$line: SDK header includes '$name' from Sluice's own tree"
    fi
  done < <(includes_of "$file")
done

# 2. Engine headers: core's SDK and engine headers only (never core/src, never launchers).
for file in core/include/sluice/engine/*.hpp; do
  while IFS=$'\t' read -r line name; do
    if [[ "$name" == sluice/* ]]; then
      is_core_sdk_header "$name" || is_engine_header "$name" ||
        violation "$file:$line: engine header includes '$name' (engine headers: core's SDK and engine headers only)"
    elif [[ -f "core/src/$name" || -n "${header_owner[$name]:-}" || -f "launchers/$name" ]]; then
      violation "$file:$line: engine header includes '$name', which is not a public header of core"
    fi
  done < <(includes_of "$file")
done

# 3. core/: nothing from backends/ or launchers/.
while IFS= read -r file; do
  while IFS=$'\t' read -r line name; do
    if [[ "$name" == sluice/* ]]; then
      [[ -f "core/include/$name" ]] && continue
      [[ -f "launchers/sdk/include/$name" ]] &&
        violation "$file:$line: core includes '$name' from launchers/sdk"
      continue
    fi
    [[ -f "${file%/*}/$name" || -f "core/src/$name" ]] && continue
    owner="${header_owner[$name]:-}"
    if [[ -n "$owner" ]]; then
      violation "$file:$line: core includes '$name' from backends/$owner"
    elif [[ -f "launchers/$name" ]]; then
      violation "$file:$line: core includes '$name' from launchers/"
    fi
  done < <(includes_of "$file")
done < <(find core -type f \( -name '*.hpp' -o -name '*.cpp' -o -name '*.h' -o -name '*.cu' \) | sort)

# Library targets defined by each backend folder, for the CMake checks below.
declare -A target_owner=()
for cmake in backends/*/CMakeLists.txt; do
  folder="$(basename "$(dirname "$cmake")")"
  while IFS= read -r target; do
    target_owner["$target"]="$folder"
  done < <(sed -n 's/^[[:space:]]*add_library(\([A-Za-z0-9_]*\).*/\1/p' "$cmake")
done

# Target names a CMakeLists.txt mentions (comments dropped).
targets_named_in() {
  sed 's/#.*//' "$1" | grep -o 'sluice_[A-Za-z0-9_]*' | sort -u || true
}

if [[ -f core/CMakeLists.txt ]]; then
  while IFS= read -r target; do
    [[ -n "${target_owner[$target]:-}" ]] &&
      violation "core/CMakeLists.txt: core names the backend library $target (backends/${target_owner[$target]})"
    [[ "$target" == sluice_cli || "$target" == sluice_sdk || "$target" == sluice_view ]] &&
      violation "core/CMakeLists.txt: core names the launchers' library $target"
  done < <(targets_named_in core/CMakeLists.txt)
fi

# 4. backends/B/: core, its own files, backends/common, and the allowed edges.
for dir in backends/*/; do
  backend="$(basename "$dir")"
  while IFS= read -r file; do
    while IFS=$'\t' read -r line name; do
      if [[ "$name" == sluice/* ]]; then
        [[ -f "launchers/sdk/include/$name" && ! -f "core/include/$name" ]] &&
          violation "$file:$line: backend '$backend' includes '$name' from launchers/sdk"
        continue
      fi
      [[ -f "${file%/*}/$name" ]] && continue
      owner="${header_owner[$name]:-}"
      if [[ -n "$owner" ]]; then
        [[ "$owner" == common || "$owner" == "$backend" ]] && continue
        allowed_edge "$backend" "$owner" ||
          violation "$file:$line: backend '$backend' includes '$name' from backend '$owner' (not an allowed edge; share it through backends/common)"
      elif [[ -f "core/src/$name" ]]; then
        violation "$file:$line: backend '$backend' includes core's private header '$name'"
      elif [[ -f "launchers/$name" ]]; then
        violation "$file:$line: backend '$backend' includes '$name' from launchers/"
      fi
    done < <(includes_of "$file")
  done < <(find "$dir" -type f \( -name '*.hpp' -o -name '*.cpp' -o -name '*.h' \) | sort)

  if [[ -f "${dir}CMakeLists.txt" ]]; then
    while IFS= read -r target; do
      owner="${target_owner[$target]:-}"
      [[ -z "$owner" || "$owner" == common || "$owner" == "$backend" ]] && continue
      allowed_edge "$backend" "$owner" ||
        violation "${dir}CMakeLists.txt: backend '$backend' links $target of backend '$owner' (not an allowed edge)"
    done < <(targets_named_in "${dir}CMakeLists.txt")
  fi
done

if ((violations > 0)); then
  echo "layers: $violations violation(s) of the include rule (docs/architecture.md)" >&2
  exit 1
fi
echo "layers: ok (SDK, engine, core and ${#ALLOWED_EDGES[@]} allowed backend edges checked)"
