//! The wasmpod-node-installer binary; see the library for everything it does.

use clap::Parser;
use wasmpod_node_installer::cli::{Cli, Command};
use wasmpod_node_installer::daemon;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Probe { ready_file } = &cli.command {
        if ready_file.exists() {
            return Ok(());
        }
        anyhow::bail!("not ready: {} does not exist", ready_file.display());
    }
    if let Command::MergeConfig(args) = &cli.command {
        print!("{}", args.merged()?);
        return Ok(());
    }
    wasmpod_logging::init(cli.log_format);
    match cli.command {
        Command::Install(args) => daemon::install(args).await?,
        Command::Uninstall(args) => daemon::uninstall(args).await?,
        Command::UninstallAll(args) => daemon::uninstall_all(args).await?,
        Command::Probe { .. } | Command::MergeConfig(_) => {}
    }
    Ok(())
}
