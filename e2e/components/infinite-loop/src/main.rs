//! `infinite-loop`: a wasi:cli/run component that prints one line, then spins forever without
//! calling the host again (only epoch/fuel interruption or SIGKILL stops it).

use std::hint::black_box;
use std::io::Write;

fn main() {
    println!("infinite-loop: spinning forever");
    let _ = std::io::stdout().flush();
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}
