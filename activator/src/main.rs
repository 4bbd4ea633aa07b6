//! The wasmpod-activator binary; see the library for what it does.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = wasmpod_activator::cli::Args::parse();
    wasmpod_logging::init(args.log_format);
    wasmpod_activator::run::run(args).await?;
    Ok(())
}
