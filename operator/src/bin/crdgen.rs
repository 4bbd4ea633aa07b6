//! Prints the WasmApp CRD as YAML: `crdgen > crds/wasmapp.yaml`.

fn main() -> anyhow::Result<()> {
    print!("{}", wasmpod_operator::crd::crd_yaml()?);
    Ok(())
}
