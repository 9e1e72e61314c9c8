//! Allocator settings for a long crawl.
//!
//! glibc's `malloc` gives each thread that contends for memory its own
//! arena (up to eight per core), keeps what is freed in the arena it came
//! from, and raises its mmap threshold each time a large block is freed, so
//! later large blocks come from the arenas too. A crawl frees multi-megabyte
//! blocks all the time (a 10 MiB body, a 4 MiB document tree) from the
//! runtime's threads, the blocking pool and SQLite's threads; each arena
//! then keeps its own high-water mark for the rest of the run. On the
//! hostile benchmark (`cargo run --release --example hostile`) that was
//! two thirds of peak RSS.
//!
//! [`tune_allocator`] caps the arenas at eight and fixes the mmap
//! threshold at 256 KiB, so large blocks are mapped on their own and
//! handed back to the kernel when freed. Eight, not two: with the
//! streaming parser no thread frees multi-megabyte trees any more, and on
//! the 20,000-page benchmark two arenas made the runtime, SQLite and
//! blocking threads queue on arena locks (futex wakes were a sixth of the
//! crawl's CPU): eight arenas cost 15% less CPU per page for ~5 MB more
//! peak RSS, and the hostile benchmark's peak is the same (~53 MB) with
//! two, four or eight.
//!
//! It also raises the trim threshold to 1 MiB. Fixing the mmap threshold
//! leaves the trim threshold at its 128 KiB default, and the runtime's
//! arenas then gave memory back to the kernel (`madvise`) many times a
//! second; each time, the kernel flushes the other cores' TLBs with an
//! interrupt, which cost 5% of the crawl's CPU on the benchmark (in a
//! virtual machine an interrupt between cores is dearer still). At 1 MiB
//! those flushes are gone from the profile, for at most 1 MiB more kept
//! per arena (~7 MB of peak RSS on the benchmark).
//!
//! A `MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_` or
//! `MALLOC_TRIM_THRESHOLD_` in the environment (or the same settings in
//! `GLIBC_TUNABLES`) wins over the setting. Elsewhere (musl, macOS,
//! Windows) this does nothing.

/// Arenas glibc may create.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 8;
/// Blocks at least this large are mapped on their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 256 << 10;
/// Free memory at the top of an arena beyond this is given back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 1 << 20;

/// Applies the settings above. Call it first thing in `main`, before any
/// thread starts.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        let unset = |name: &str, tunable: &str| {
            std::env::var_os(name).is_none() && !tunables.contains(tunable)
        };
        // SAFETY: `mallopt` only sets allocator parameters; it is called
        // before other threads exist and with documented parameters.
        unsafe {
            if unset("MALLOC_ARENA_MAX", "glibc.malloc.arena_max") {
                libc::mallopt(libc::M_ARENA_MAX, ARENAS);
            }
            if unset("MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold") {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
            if unset("MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold") {
                libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            }
        }
    }
}
