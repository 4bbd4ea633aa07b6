//! The wasmpod-operator binary; see the library for everything it does.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = wasmpod_operator::cli::Args::parse();
    wasmpod_logging::init(args.log_format);
    wasmpod_operator::run::run(args).await?;
    Ok(())
}
