//! `mamori`: the one binary. It loads the configuration, wires the rooms together and
//! runs the command asked for. `anyhow` lives here and only here (DESIGN "Style").

mod admin;
mod audit;
mod cli;
mod config;
mod logging;
mod serve;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)] // the binary's last word to its user
            {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let cfg = config::load(&cli.global, cli.command.serve_overrides())?;
    match cli.command {
        cli::Command::Serve(_) => {
            logging::init(&cfg.log)?;
            serve::serve(cfg).await
        }
        cli::Command::Init => serve::init(&cfg).await,
        cli::Command::Admin(cmd) => admin::run(&cfg, cmd, cli.global.json).await,
        cli::Command::Config(cli::ConfigCommand::Show) => config::show(&cfg),
        cli::Command::Audit(cli::AuditCommand::Verify {
            url,
            key,
            token,
            checkpoint,
        }) => {
            let args = audit::VerifyArgs {
                url,
                key,
                token,
                checkpoint,
            };
            let summary = tokio::task::spawn_blocking(move || audit::verify(&args)).await??;
            #[allow(clippy::print_stdout)]
            {
                println!("{summary}");
            }
            Ok(())
        }
        cli::Command::Audit(cli::AuditCommand::Report { from, to }) => {
            admin::report(&cfg, &from, &to, cli.global.json).await
        }
    }
}
