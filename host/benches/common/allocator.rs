//! The `hub` binary's allocator (`host/src/main.rs`), so a bench that runs the hub in its
//! own process measures what ships. With glibc's, an in-process FHIR bench spent 31 % of
//! its samples in `malloc`/`free` and 4 % waking threads blocked on its arena locks
//! (BENCHMARKS.md, "FHIR pages").

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
