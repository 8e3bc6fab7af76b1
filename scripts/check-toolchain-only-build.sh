#!/usr/bin/env bash
# Builds the workspace the way a fresh machine with only the Rust toolchain would: a new,
# empty target directory (every build script runs), PROTOC unset, and a PATH holding only
# the toolchain, the C compiler some crates build with, and a `protoc` that fails loudly,
# so a build that reaches for one fails here instead of on a user's machine.
# Each crate is checked on its own (`cargo check -p CRATE --all-targets`), so a crate that
# builds only because another one in the same invocation turned on a feature it needs (for
# `cargo test -p CRATE` on a fresh machine) fails here too.
# Usage: scripts/check-toolchain-only-build.sh [cargo arguments; default: the per-crate checks]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/bin" "$scratch/target"
cat > "$scratch/bin/protoc" <<'PROTOC'
#!/bin/sh
echo "protoc was called ($*): the build must need nothing but the Rust toolchain" >&2
exit 1
PROTOC
chmod +x "$scratch/bin/protoc"

home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cargo_bin=$(dirname "$(command -v cargo)")
# The fake protoc comes first; /usr/bin and /bin hold the C compiler and the shell tools a
# build script may run (cc, ar, sh), none of them protoc on a machine without the package.
clean_cargo() {
    env -i HOME="$home" TERM=dumb CARGO_HOME="${CARGO_HOME:-$home/.cargo}" \
        RUSTUP_HOME="${RUSTUP_HOME:-$home/.rustup}" CARGO_TARGET_DIR="$scratch/target" \
        PATH="$scratch/bin:$cargo_bin:/usr/bin:/bin" \
        cargo "$@"
}
if [[ $# -gt 0 ]]; then
    clean_cargo "$@"
else
    for manifest in crates/*/Cargo.toml; do
        crate=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$manifest" | head -n 1)
        echo "--- $crate"
        clean_cargo check --quiet -p "$crate" --all-targets
    done
fi
if [[ -x /usr/bin/protoc || -x /bin/protoc ]]; then
    echo "note: a protoc is installed on this machine, but the fake one came first on PATH"
fi
echo "built with nothing but the Rust toolchain (no protoc, PROTOC unset)"
