//! Compiling components in the background: at a lower CPU priority than
//! the partition workers.
//!
//! Cranelift compiles a component's functions in parallel on rayon's
//! global pool, and a 12–18 MB Python or JavaScript component keeps every
//! core busy for tens of seconds. A reload compiles while the old version
//! goes on delivering, so at the same priority the compile would take its
//! share of the cores from the workers, and a hot pipeline would slow down
//! for as long as the compile runs. The compiling threads are niced
//! instead: when the workers want the cores they get them, and when the
//! machine is idle (at start-up, say) the compile runs as fast as before.

use std::sync::Once;
use wasmtime::component::Component;
use wasmtime::Engine;

/// The nice value of the compiling threads: a nice-10 thread weighs about a
/// tenth of a nice-0 one in Linux's scheduler.
const COMPILE_NICE: libc::c_int = 10;

/// Makes rayon's global pool, which wasmtime compiles on, run at
/// [`COMPILE_NICE`]. Called before the first compile; later calls do
/// nothing.
fn lower_pool_priority() {
    static POOL: Once = Once::new();
    POOL.call_once(|| {
        let built = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("flumen-compile-{i}"))
            .start_handler(|_| lower_this_thread())
            .build_global();
        // Only fails if something built the global pool first; compiles
        // then run at normal priority, which is slower for the workers but
        // not wrong.
        if let Err(e) = built {
            tracing::debug!(error = %e, "rayon's global pool was already built");
        }
    });
}

/// Compiles `bytes` on a thread of its own at [`COMPILE_NICE`] (its
/// functions on the niced pool), so that the caller's thread keeps its
/// priority: a thread cannot raise its priority back without privileges.
pub fn compile(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    lower_pool_priority();
    std::thread::scope(|s| {
        let compiling = std::thread::Builder::new()
            .name("flumen-compile".into())
            .spawn_scoped(s, || {
                lower_this_thread();
                Component::new(engine, bytes)
            });
        match compiling {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to spare: compile here, at the caller's priority.
            Err(_) => Component::new(engine, bytes),
        }
    })
}

/// Lowers the calling thread's priority. On Linux the nice value belongs to
/// the thread (`setpriority(PRIO_PROCESS, 0, …)` changes only the caller).
/// Failing leaves the thread at its priority, which only costs the workers
/// some CPU, so it is logged and ignored.
fn lower_this_thread() {
    // SAFETY: setpriority only reads its integer arguments.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, COMPILE_NICE) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(),
            "cannot lower the compiling thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice_of_this_thread() -> libc::c_int {
        // SAFETY: as above; getpriority returns the nice value (errno is
        // not needed: the values here are never -1).
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[test]
    fn compiles_on_a_niced_thread_and_leaves_the_caller_alone() {
        let engine = Engine::default();
        let before = nice_of_this_thread();
        // The smallest component: the preamble alone.
        let component = compile(&engine, b"\0asm\x0d\x00\x01\x00");
        assert!(component.is_ok());
        assert_eq!(nice_of_this_thread(), before);
        // The pool's threads are niced when they start.
        let pool_nice = rayon::broadcast(|_| nice_of_this_thread());
        assert!(
            pool_nice.iter().all(|&n| n >= COMPILE_NICE),
            "{pool_nice:?}"
        );
    }

    #[test]
    fn a_broken_component_is_an_error_not_a_panic() {
        let engine = Engine::default();
        assert!(compile(&engine, b"not wasm").is_err());
    }
}
