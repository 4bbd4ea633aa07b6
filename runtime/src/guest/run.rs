//! Running command components and WASI preview 1 modules to completion, and the exit status
//! of a guest that exits, traps or runs out of memory.

use std::sync::atomic::Ordering;

use wasmtime::{Engine, InstancePre};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p2::bindings::CommandPre;

use crate::guest::{Guest, GuestState, P1State};
use crate::program::Program;

/// Exit status of a guest that trapped (as a process aborted by SIGABRT would report).
pub const TRAP_EXIT_CODE: i32 = 134;
/// Exit status of a guest stopped for going over its memory limit (as the kernel's OOM kill).
pub const OOM_EXIT_CODE: i32 = 137;

/// Runs a command component or p1 module to completion and returns its exit status. An HTTP
/// program has nothing to run to completion (it is served: `crate::http`) and exits 0.
pub async fn run_to_completion(engine: &Engine, program: &Program, guest: &Guest) -> i32 {
    let result = match program {
        Program::Command(pre) => run_command(engine, pre, guest).await,
        Program::P1(pre) => run_p1(engine, pre, guest).await,
        Program::Http(_) => Ok(0),
    };
    match result {
        Ok(code) => code,
        Err(e) => exit_status_of(e, guest),
    }
}

async fn run_command(
    engine: &Engine,
    pre: &CommandPre<GuestState>,
    guest: &Guest,
) -> wasmtime::Result<i32> {
    let mut store = guest.component_store(engine);
    let cmd = pre.instantiate_async(&mut store).await?;
    Ok(match cmd.wasi_cli_run().call_run(&mut store).await? {
        Ok(()) => 0,
        Err(()) => 1,
    })
}

async fn run_p1(
    engine: &Engine,
    pre: &InstancePre<P1State>,
    guest: &Guest,
) -> wasmtime::Result<i32> {
    let mut store = guest.p1_store(engine);
    let instance = pre.instantiate_async(&mut store).await?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    start.call_async(&mut store, ()).await?;
    Ok(0)
}

/// Turns a guest error into an exit status: `exit(n)` is n; a trap is reported on the
/// guest's stderr and in the host's log.
pub fn exit_status_of(e: wasmtime::Error, guest: &Guest) -> i32 {
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return exit.0;
    }
    let oom = guest.usage().oom.load(Ordering::SeqCst);
    guest.report(&format!("guest trapped: {e:?}"));
    tracing::warn!(error = ?e, oom, "guest trapped");
    if oom { OOM_EXIT_CODE } else { TRAP_EXIT_CODE }
}
