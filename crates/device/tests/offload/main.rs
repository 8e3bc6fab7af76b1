//! Segmentation and coalescing (`ferrotun_device::offload`) through the crate's API,
//! checked against an independent checksum implementation and hand-built packets
//! (`util`), and against the kernel's own TUN offloads (`kernel`, root only).

mod coalesce;
mod kernel;
mod roundtrip;
mod split;
mod util;
