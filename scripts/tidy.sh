#!/usr/bin/env bash
# clang-tidy with the checks of .clang-tidy, warnings as errors, over the dev build's
# compile_commands.json, files in parallel. Clang's thread-safety analysis runs too
# (-Wthread-safety), so a GUARDED_BY breach fails like a tidy warning.
#
#   scripts/tidy.sh                  # every C++ source of the checked folders
#   TIDY_BASE=main scripts/tidy.sh   # files changed since main, plus a rotating sample
#   scripts/tidy.sh src/journal/committer.cc ...
#
# Folders another engineer is rewriting are left out until they are tidied there
# (TIDY_EXCLUDE, a regular expression; empty to check everything).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${TIDY_BUILD:-build/dev}
jobs=${TIDY_JOBS:-$(nproc)}
exclude=${TIDY_EXCLUDE-'^src/core/app_state\.cc$'}
sample=${TIDY_SAMPLE:-12}
# Headers are checked where they belong to a checked folder.
header_filter=${TIDY_HEADER_FILTER:-'/src/(base|ledger|program|cluster|journal|report|cli|server|sched|sim)/|/src/core/(command|core|access)\.h'}
[[ -f $build/compile_commands.json ]] || cmake --preset dev >/dev/null

if (($# > 0)); then
  files=("$@")
else
  mapfile -t all < <(git ls-files 'src/*.cc' 'tests/*.cc' | grep -v '^tests/fuzz/' |
                     { if [[ -n $exclude ]]; then grep -Ev "$exclude"; else cat; fi; })
  if [[ -n ${TIDY_BASE:-} ]]; then
    # Changed files, then a sample that rotates by day so the whole tree is covered in turn.
    mapfile -t changed < <(git diff --name-only "$TIDY_BASE" -- 'src/*.cc' 'tests/*.cc' |
                           grep -Fx -f <(printf '%s\n' "${all[@]}") || true)
    day=$(( $(date +%s) / 86400 ))
    mapfile -t rotating < <(printf '%s\n' "${all[@]}" |
                            awk -v n=${#all[@]} -v day="$day" -v k="$sample" \
                                '{ if (((NR + day * k) % n) < k) print }')
    mapfile -t files < <(printf '%s\n' "${changed[@]}" "${rotating[@]}" | grep . | sort -u)
  else
    files=("${all[@]}")
  fi
fi
echo "tidy: ${#files[@]} files, $jobs at a time"
started=$SECONDS
# GCC's warning flags in the compile commands mean other things to clang: silence them,
# then ask for the thread-safety analysis alone.
set +e
printf '%s\n' "${files[@]}" |
  xargs -P "$jobs" -n 1 clang-tidy -p "$build" --quiet --header-filter="$header_filter" \
        --extra-arg=-Wno-everything --extra-arg=-Wthread-safety 2>&1 |
  grep -v -E '^[0-9]+ warnings? generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter' |
  tee "$build/tidy.log"
status=${PIPESTATUS[1]}
set -e
echo "tidy: $((SECONDS - started)) s, exit $status"
exit "$status"
