#!/usr/bin/env bash
# The protocol core, the data plane, the configuration protocol and the test kit stay free
# of async runtimes, HTTP stacks and gRPC: `cargo tree` of each (normal and dev edges) must
# not list any of them. Run by .ci/run; exits non-zero naming what leaked in.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

heavy='^(tokio|tonic|axum|hyper|hyper-util|h2|etcd-client|ferrotun-etcd|prost|ferrotun-mesh|ferrotun-daemon|ferrotun)$'
status=0
for crate in ferrotun-proto ferrotun-device ferrotun-uapi ferrotun-testkit; do
    leaked=$(cargo tree -p "$crate" -e normal,dev --prefix none --format '{p}' |
        awk '{print $1}' | sort -u | grep -E "$heavy" || true)
    if [[ -n $leaked ]]; then
        echo "$crate depends on: $(echo "$leaked" | tr '\n' ' ')" >&2
        status=1
    else
        echo "$crate: no async runtime, HTTP or gRPC in its graph"
    fi
done
exit "$status"
