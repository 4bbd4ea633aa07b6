//! `no-world`: a valid component that exports neither wasi:cli/run nor
//! wasi:http/incoming-handler, only `wasmpod:fixtures/greeter@0.1.0`. The shim must refuse it
//! with an error that names what the component exports.

wit_bindgen::generate!({
    world: "no-world",
    path: "wit",
});

struct NoWorld;

impl exports::wasmpod::fixtures::greeter::Guest for NoWorld {
    fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}

export!(NoWorld);
