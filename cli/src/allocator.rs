//! The process's allocator, and the one setting of it that training wants.

/// Training allocates and frees tens of megabytes of tensors per step;
/// glibc's malloc returns such blocks to the kernel each time (mmap), and
/// the page faults cost a third of the step. mimalloc keeps them: training
/// on the Online Retail sample went from 13.7 s to about 10 s per epoch.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc v3's `mi_option_purge_delay` (its place in `mi_option_t`;
/// libmimalloc-sys names only some of the options).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Its default in milliseconds, by which [`keep_freed_memory`] also checks
/// that the place above is that option in the mimalloc linked here.
const PURGE_DELAY_DEFAULT: std::ffi::c_long = 1000;

/// Stops mimalloc from returning freed memory to the kernel.
///
/// By default mimalloc still hands freed memory back a second after it was
/// freed, and a training step that allocates it again takes the page faults
/// and the zeroing of every page: a tenth of an Online Retail epoch. The
/// commands that train keep it instead; their peak memory is the same (each
/// step needs the same blocks again), it is only not returned before they
/// exit. A `MIMALLOC_PURGE_DELAY` set by the user wins, and so does a
/// mimalloc whose options differ from the ones this was written for.
/// Call it before the command starts threads.
pub fn keep_freed_memory() {
    // Reading and setting an option are plain calls into mimalloc's C API
    // (an integer in a table it owns), with no pointers involved.
    #[allow(unsafe_code)]
    // SAFETY: both functions take an option index and a value, and ignore
    // an index outside mimalloc's table (`get` returns 0). `set` is not
    // thread-safe: it is called first thing in a command, before any of
    // its threads start.
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) == PURGE_DELAY_DEFAULT {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_is_the_option_with_mimallocs_default() {
        // A dependency update that moves the option makes this fail before
        // it makes training slower without a word.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            #[allow(unsafe_code)]
            // SAFETY: as in `keep_freed_memory`.
            let delay = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
            assert_eq!(delay, PURGE_DELAY_DEFAULT);
        }
    }
}
