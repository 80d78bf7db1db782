#!/usr/bin/env bash
# The code's layout, as .clang-format and .editorconfig describe it:
#   - every C++ file (src/, test/) is as clang-format leaves it;
#   - every text file ends with a newline and has no CR line ends;
#   - code and scripts (C++, shell, Python, CMake, the Makefile) have no
#     trailing blanks;
#   - every shell script (*.sh, .ci/run) passes shellcheck, the sourced
#     files followed (-x).
# Prints "ok"/"not ok" per check, the files at fault with the command that
# fixes them, and "format: N passed, N failed". Needs the commands
# clang-format and shellcheck (Debian's packages of those names;
# scripts/common.sh installs them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
# The tracked files where git knows them, else every file but build products.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files)
else
    mapfile -t files < <(find . -path ./build -prune -o -path './build-*' -prune -o -path './tmp_*' -prune \
                              -o -path ./.git -prune -o -type f -print | sed 's#^\./##' | sort)
fi
cxx=() text=() code=() shell=()
for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    case $f in
        expected/*|test/isolation/expected/*|test/data/*|test/fuzz/corpus/*|test/upgrade/*) continue ;;
    esac
    grep -Iq . "$f" 2>/dev/null || [ ! -s "$f" ] || continue   # text files only
    text+=("$f")
    case $f in
        src/*.cpp|src/*.hpp|test/*.cpp|test/*.hpp) cxx+=("$f"); code+=("$f") ;;
        *.sh|*.py|CMakeLists.txt|Makefile|*.control) code+=("$f") ;;
    esac
    case $f in *.sh|.ci/run) shell+=("$f") ;; esac
done

if ! command -v clang-format >/dev/null; then
    not_ok "clang-format is installed (apt-get install clang-format)"
else
    bad=()
    for f in "${cxx[@]}"; do
        clang-format --style=file "$f" | cmp -s - "$f" || bad+=("$f")
    done
    if [ ${#bad[@]} = 0 ]; then ok "clang-format: ${#cxx[@]} C++ files as .clang-format lays them out"
    else
        not_ok "clang-format: ${#bad[@]} of ${#cxx[@]} C++ files differ from .clang-format's layout:"
        printf '#   %s\n' "${bad[@]}"
        echo "#   fix: clang-format -i ${bad[*]}"
        clang-format --style=file "${bad[0]}" | diff -u "${bad[0]}" - | head -n 30 | sed 's/^/#   /' || true
    fi
fi

bad=()
for f in "${text[@]}"; do
    [ -s "$f" ] || continue
    if [ "$(tail -c1 "$f" | od -An -c | tr -d ' ')" != '\n' ] || grep -q $'\r' "$f"; then bad+=("$f"); fi
done
if [ ${#bad[@]} = 0 ]; then ok "line ends: ${#text[@]} text files end with a newline, no CR"
else
    not_ok "line ends: files without a final newline, or with CR line ends:"; printf '#   %s\n' "${bad[@]}"
    printf '%s\n' "#   fix: sed -i 's/\\r\$//' FILE; and end the file with a newline"
fi

bad=()
for f in "${code[@]}"; do grep -qE '[[:space:]]+$' "$f" && bad+=("$f"); done
if [ ${#bad[@]} = 0 ]; then ok "trailing blanks: none in ${#code[@]} files of code and scripts"
else
    not_ok "trailing blanks in:"; printf '#   %s\n' "${bad[@]}"
    echo "#   fix: sed -i 's/[[:space:]]*\$//' ${bad[*]}"
fi
if ! command -v shellcheck >/dev/null; then
    not_ok "shellcheck is installed (apt-get install shellcheck)"
elif out=$(shellcheck -x "${shell[@]}" 2>&1); then
    ok "shellcheck: ${#shell[@]} shell scripts, no finding"
else
    not_ok "shellcheck: findings in the shell scripts (shellcheck -x FILE):"
    printf '%s\n' "$out" | head -n 40 | sed 's/^/#   /'
fi

echo "format: $passed passed, $failed failed"
[ "$failed" = 0 ]
