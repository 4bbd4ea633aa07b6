//! `http-get`: a wasi:cli command that fetches each URL in env `TARGET_URL` (separated by
//! spaces) with wasi:http/outgoing-handler and prints the status line and body of each, or the
//! error; exits 1 when any failed. Used to prove a Wasm pod reaches a container pod, by address
//! and by name.

fn main() {
    let urls = std::env::var("TARGET_URL").unwrap_or_default();
    let mut failed = false;
    for url in urls.split_whitespace() {
        match wasi_fetch::get(url) {
            Ok((status, body)) => {
                println!("GET {url} -> {status}");
                print!("{}", String::from_utf8_lossy(&body));
            }
            Err(e) => {
                eprintln!("GET {url} failed: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
