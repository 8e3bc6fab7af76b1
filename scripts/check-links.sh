#!/usr/bin/env bash
# The documentation stands alone: every relative link in README.md and docs/*.md resolves to
# a file or directory of this repository, and no tracked file points at a path outside it
# (a `../something` that climbs above the repository root, or a machine-specific absolute
# path on the machine it was written on). Run by .ci/run; exits non-zero with one line per problem.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd -P)
problems=0

complain() {
    printf '%s\n' "$*" >&2
    problems=$((problems + 1))
}

# Whether path $1 (relative to directory $2) resolves inside the repository.
inside() {
    local resolved
    resolved=$(realpath -m -- "$2/$1")
    [[ $resolved == "$root" || $resolved == "$root"/* ]]
}

# 1. Relative links in the documentation: [text](target) and [text]: target.
docs=(README.md)
while IFS= read -r f; do docs+=("$f"); done < <(git ls-files -- 'docs/*.md')
for doc in "${docs[@]}"; do
    dir=$(dirname "$doc")
    while IFS= read -r target; do
        target=${target%%#*}
        target=${target%% *}
        case $target in
        '' | http://* | https://* | mailto:*) continue ;;
        esac
        if ! inside "$target" "$dir"; then
            complain "$doc: link to $target leaves the repository"
        elif [[ ! -e $dir/$target ]]; then
            complain "$doc: link to $target does not resolve"
        fi
    done < <(grep -oE '\]\([^)]+\)' "$doc" | sed -E 's/^\]\((.*)\)$/\1/'
             grep -oE '^\[[^]]+\]: +[^ ]+' "$doc" | sed -E 's/^\[[^]]+\]: +//')
done

# 2. No tracked text file refers to a path outside the repository.
while IFS= read -r file; do
    [[ -f $file ]] || continue
    grep -Iq . "$file" 2>/dev/null || continue # binary or empty
    dir=$(dirname "$file")
    while IFS= read -r ref; do
        if ! inside "$ref" "$dir"; then
            complain "$file: refers to $ref, outside the repository"
        fi
    done < <(grep -oE '(\.\./)+[A-Za-z0-9_][A-Za-z0-9_./-]*' "$file" || true)
    if grep -nE '(^|[^A-Za-z0-9_.])/wor[k]/' "$file" >/dev/null; then
        complain "$file: refers to a machine-specific path (the work directory it was written in)"
    fi
done < <(git ls-files -- . ':!:fuzz/corpus' ':!:*.png' ':!:*.lock')

if ((problems > 0)); then
    echo "check-links: $problems problem(s)" >&2
    exit 1
fi
echo "check-links: every documentation link resolves, nothing points outside the repository"
