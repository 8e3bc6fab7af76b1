//! Tests for segmentation and coalescing, checked against an independent
//! checksum implementation and hand-built packets (`util`).

mod coalesce;
mod kernel;
mod roundtrip;
mod split;
mod util;
