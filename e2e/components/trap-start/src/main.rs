//! `trap-start`: a wasi:cli/run component that panics at once. The panic message goes to stderr
//! and, as wasm32 panics abort, the guest then traps on `unreachable`.

fn main() {
    eprintln!("trap-start: about to panic");
    panic!("wasmpod trap-start: deliberate panic at startup");
}
