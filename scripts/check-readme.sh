#!/usr/bin/env bash
# Runs README.md's shell blocks as written, the way an operator following the README would:
# as root, at the paths it names (`install ... /usr/bin/ferrotun`, `useradd`, `wg-quick up
# wg0`), but on a throw-away copy of this machine. The blocks run in mount, network and pid
# namespaces of their own, where /usr, /etc and /var are overlays whose writes land in a
# scratch directory and /run is an empty tmpfs; so nothing outside the scratch directory
# changes, no interface or socket can collide with another one on the host, and every
# process a block leaves behind ends with the pid namespace.
#
# Every ```sh block in the file carries a marker on the line before it, so that a new block
# is run or skipped by decision and never by accident:
#   <!-- ci: run -->             run it
#   <!-- ci: run if CMD -->      run it when CMD is installed; otherwise skip it and say so
#   <!-- ci: skip: REASON -->    never run it (placeholders, needs systemd, takes minutes)
# A `run` marker may add `; before: CMD` and `; after: CMD`: shell run around the block, for
# a block that needs a state the README states in words ("a running daemon").
# The blocks run in file order, each in its own `bash -euo pipefail` from the top of the
# checkout, so what one installs the next one finds; the first failure ends the check.
#
# The Install block starts with `cargo build --release`; that build runs first, outside the
# namespaces (which have no network, should a crate need downloading), so the block's own
# build finds everything done.
#
# Needs root, unshare (util-linux) and overlayfs. Run by .ci/run.
# Usage: scripts/check-readme.sh [MARKDOWN-FILE]   (default README.md)
set -euo pipefail

caller=$(pwd)
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# One block's time limit: a block that waits forever (a foreground daemon) must fail, not
# hang CI. The longest one is a no-op build plus installs and an up/down.
BLOCK_TIMEOUT=${BLOCK_TIMEOUT:-120}

# Splits FILE into $scratch/blocks: for block K, K.sh (its text) and K.meta (its line,
# mode, condition and before/after commands, one per line). Fails listing every shell
# block without a marker and every marker that is malformed or stands before no shell block.
parse() {
    local file=$1 out=$2 n=0 k=0 line fence="" marker="" marker_n=0 rest cond before after
    local problems=()
    mkdir -p "$out"
    while IFS= read -r line || [[ -n $line ]]; do
        n=$((n + 1))
        if [[ -n $fence ]]; then
            # Inside a code block: only its closing fence matters.
            if [[ $line =~ ^\`\`\`+[[:space:]]*$ ]]; then
                fence=""
            elif [[ $fence == shell ]]; then
                printf '%s\n' "$line" >>"$out/$k.sh"
            fi
            continue
        fi
        if [[ -n $marker && $marker_n -eq $((n - 1)) && ! $line =~ ^\`\`\`(sh|bash|shell)[[:space:]]*$ ]]; then
            problems+=("$file:$marker_n: the marker stands before no \`\`\`sh block")
            marker=""
        fi
        if [[ $line =~ ^\`\`\`(sh|bash|shell)[[:space:]]*$ ]]; then
            fence=shell
            k=$((k + 1))
            : >"$out/$k.sh"
            if [[ -z $marker || $marker_n -ne $((n - 1)) ]]; then
                problems+=("$file:$n: shell block without a marker (<!-- ci: run --> or <!-- ci: skip: REASON -->)")
                printf '%s\n' "$n" invalid "" "" "" >"$out/$k.meta"
                continue
            fi
            cond="" before="" after=""
            if [[ $marker =~ ^skip:\ (.+)$ ]]; then
                printf '%s\n' "$n" skip "${BASH_REMATCH[1]}" "" "" >"$out/$k.meta"
                marker=""
                continue
            fi
            rest=${marker#run}
            if [[ $rest =~ ^\ if\ ([^\;[:space:]]+)(.*)$ ]]; then
                cond=${BASH_REMATCH[1]}
                rest=${BASH_REMATCH[2]}
            fi
            while [[ -n $rest ]]; do
                if [[ $rest =~ ^\;\ before:\ ([^\;]+)(.*)$ ]]; then
                    before=${BASH_REMATCH[1]}
                elif [[ $rest =~ ^\;\ after:\ ([^\;]+)(.*)$ ]]; then
                    after=${BASH_REMATCH[1]}
                else
                    problems+=("$file:$marker_n: cannot read the marker's \"$rest\"")
                    break
                fi
                rest=${BASH_REMATCH[2]}
            done
            printf '%s\n' "$n" run "$cond" "$before" "$after" >"$out/$k.meta"
            marker=""
        elif [[ $line =~ ^\`\`\` ]]; then
            fence=other
        elif [[ $line =~ ^\<\!--\ ci:\ (.*)\ --\>[[:space:]]*$ ]]; then
            marker=${BASH_REMATCH[1]}
            marker_n=$n
            if [[ ! $marker =~ ^(run|skip:\ .+) ]]; then
                problems+=("$file:$n: unknown marker \"$marker\" (run, run if CMD, skip: REASON)")
                marker=""
            fi
        elif [[ $line == *'<!-- ci'* ]]; then
            problems+=("$file:$n: a marker must stand alone on its line: <!-- ci: ... -->")
        fi
    done <"$file"
    if [[ -n $fence ]]; then
        problems+=("$file: a code block is never closed")
    fi
    if ((${#problems[@]} > 0)); then
        printf '%s\n' "${problems[@]}" >&2
        echo "check-readme: ${#problems[@]} problem(s) with the markers; nothing was run" >&2
        return 1
    fi
    echo "$k"
}

# Runs block file $1 with shell $2 before it and $3 after it (either may be empty); the
# first failure's status is the result.
run_block() {
    if [[ -n $2 ]]; then
        timeout "$BLOCK_TIMEOUT" bash -euo pipefail -c "$2" </dev/null || return
    fi
    timeout "$BLOCK_TIMEOUT" bash -euo pipefail "$1" </dev/null || return
    if [[ -n $3 ]]; then
        timeout "$BLOCK_TIMEOUT" bash -euo pipefail -c "$3" </dev/null || return
    fi
}

# Waits (at most 5 s) until no configuration socket is left whose interface is gone, and
# fails if one outlives that: every daemon must go with its link. Real `wg-quick down`
# deletes the link and returns; the daemon notices and exits a few milliseconds later
# (wireguard-go behaves the same). A new daemon of the same name waits for such a one
# itself (crates/daemon/src/server.rs); this keeps the blocks from depending on it.
settle() {
    local sock deadline=$((SECONDS + 5))
    for sock in /run/wireguard/*.sock; do
        [[ -e $sock ]] || continue
        while [[ -e $sock ]] && ! ip link show dev "$(basename "$sock" .sock)" >/dev/null 2>&1; do
            if ((SECONDS >= deadline)); then
                echo "check-readme: $sock outlived its interface by 5 s" >&2
                return 1
            fi
            sleep 0.05
        done
    done
}

# Inside the namespaces: make the throw-away machine, then run the blocks.
inside() {
    local scratch=$1 file=$2 count=$3 checkout=$4 dir k meta line mode cond before after status
    local ran=0 skipped=() start
    # Overlays, not copies: the blocks see the real system (compilers, wg, ip) and write
    # into $scratch/upper. The lower directories' own submounts would not show through an
    # overlay; this machine has none under these three.
    for dir in usr etc var; do
        mkdir -p "$scratch/upper/$dir" "$scratch/work/$dir"
        mount -t overlay overlay \
            -o "lowerdir=/$dir,upperdir=$scratch/upper/$dir,workdir=$scratch/work/$dir" "/$dir"
    done
    # /run holds /run/wireguard: an empty one, so another daemon's socket on this host is
    # neither seen nor removed.
    mount -t tmpfs -o mode=0755 tmpfs /run
    # As on a fresh machine: none of what the README installs or creates is there yet, so
    # each block must do its part (whatever this host has, the overlay hides).
    rm -rf /etc/wireguard /usr/bin/ferrotun /usr/local/bin/wg /usr/local/bin/wg-quick \
        /etc/systemd/system/ferrotun@.service /etc/systemd/system/ferrotun-mesh@.service
    if id -u ferrotun >/dev/null 2>&1; then
        userdel ferrotun
    fi
    ip link set lo up
    # A root login's PATH; cargo (for the Install block's build) last, so a `ferrotun` that
    # `cargo install` left there cannot stand in for the installed one.
    PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$(dirname "$(command -v cargo)")"
    export PATH
    cd "$checkout"

    for ((k = 1; k <= count; k++)); do
        mapfile -t meta <"$scratch/blocks/$k.meta"
        line=${meta[0]} mode=${meta[1]} cond=${meta[2]} before=${meta[3]} after=${meta[4]}
        if [[ $mode == skip ]]; then
            skipped+=("$file:$line: $cond")
            continue
        fi
        if [[ -n $cond ]] && ! command -v "$cond" >/dev/null; then
            skipped+=("$file:$line: $cond is not installed")
            continue
        fi
        printf '==> %s:%s\n' "$file" "$line"
        sed 's/^/    $ /' "$scratch/blocks/$k.sh"
        start=$SECONDS
        # Into a file, not a pipe: a daemon a block starts may keep the block's stdout or
        # stderr open for its whole life, and a pipe's reader would wait for it.
        status=0
        run_block "$scratch/blocks/$k.sh" "$before" "$after" >"$scratch/output" 2>&1 || status=$?
        sed 's/^/    /' "$scratch/output"
        if ((status != 0)); then
            if ((status == 124)); then
                printf 'check-readme: the block at %s:%s timed out after %ds\n' "$file" "$line" \
                    "$BLOCK_TIMEOUT" >&2
            else
                printf 'check-readme: the block at %s:%s failed (exit %d)\n' "$file" "$line" \
                    "$status" >&2
            fi
            return 1
        fi
        settle
        printf '    (ok, %ds)\n' $((SECONDS - start))
        ran=$((ran + 1))
    done
    echo
    for line in "${skipped[@]}"; do
        echo "skipped $line"
    done
    echo "check-readme: $ran block(s) of $file ran as written, ${#skipped[@]} skipped"
}

if [[ ${1:-} == --inside ]]; then
    inside "$2" "$3" "$4" "$5"
    exit
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "check-readme: needs root (the blocks install into /usr and bring interfaces up)" >&2
    exit 1
fi
# FILE as given, relative to where the script was called from; the blocks run from the top
# of the checkout, as the README's relative paths (target/, contrib/) expect.
file=${1:-README.md}
if [[ $file != /* && -n ${1:-} ]]; then
    file=$(cd "$caller" && realpath -- "$file")
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
count=$(parse "$file" "$scratch/blocks")

if grep -qx 'cargo build --release' "$file"; then
    echo "==> cargo build --release (before the namespaces, which have no network)"
    cargo build --release
fi
unshare --mount --net --pid --fork --mount-proc --propagation private -- \
    bash "$(pwd)/scripts/check-readme.sh" --inside "$scratch" "$file" "$count" "$(pwd)"
