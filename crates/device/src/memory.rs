//! Giving freed heap memory back to the kernel.
//!
//! glibc keeps what a thread freed in that thread's arena for reuse, so a burst of
//! short-lived allocations (a metrics scrape of a large interface builds megabytes of
//! label strings) would otherwise stay in the daemon's resident size until the next burst.

/// Returns the free memory of every malloc arena to the kernel (glibc's `malloc_trim`).
/// Costs a walk over the arenas: for after a rare, large piece of work, not per packet.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only inspects and releases the allocator's free chunks; it takes
    // the arenas' own locks and touches no memory a caller still owns.
    unsafe {
        libc::malloc_trim(0);
    }
}
