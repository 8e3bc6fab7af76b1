#!/usr/bin/env bash
# Sees ferrotun work on a fresh Debian machine: installs what the demo uses if it is missing,
# builds the release binary and runs `ferrotun demo` (two network namespaces, a tunnel
# between them, a ping and a throughput test). Extra arguments go to `ferrotun demo`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export DEBIAN_FRONTEND=noninteractive
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH:/usr/sbin:/sbin"

# The demo needs root for namespaces and TUN; the build does not.
if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null; then
    as_root=(sudo)
else
    echo "the demo needs root (network namespaces, TUN) and sudo is not installed" >&2
    exit 1
fi

# What `ferrotun demo` runs: ip for the namespaces, iptables for the peer that masquerades
# its LAN, ping across the tunnel (the throughput test is built in).
packages=(iproute2 iptables iputils-ping)
missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "installing ${missing[*]}"
    "${as_root[@]}" apt-get update -q
    # sudo drops the environment, and a package may ask a debconf question without this.
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install the stable Rust toolchain (https://rustup.rs) first" >&2
    exit 1
fi

cargo build --release --bin ferrotun
exec "${as_root[@]}" "${CARGO_TARGET_DIR:-target}/release/ferrotun" demo "$@"
