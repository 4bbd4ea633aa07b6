//! Shim logs go to the `log` FIFO in the bundle, which containerd copies into its own log.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

pub fn init(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Read-write so opening never blocks, even before containerd attached its reader.
    let Ok(fifo) = OpenOptions::new().read(true).write(true).open("log") else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(Mutex::new(fifo))
        .try_init();
}
