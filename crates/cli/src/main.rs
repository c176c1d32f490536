//! `mamori`: the one binary. It loads the configuration, wires the rooms together and
//! runs the command asked for. `anyhow` lives here and only here (DESIGN "Style").

mod admin;
mod audit;
mod cli;
mod collect;
mod config;
mod detect;
mod export;
mod flows;
mod logging;
mod report;
mod sensor;
mod sensor_admin;
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
        // `mamori flows … | head`: the reader went away; that is not a failure.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)] // the binary's last word to its user
            {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn flows_command(
    files: &[std::path::PathBuf],
    format: flows::Format,
    output: flows::Output,
    stats: bool,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout().lock();
    let mut printer =
        flows::Printer::new(std::io::BufWriter::with_capacity(1 << 16, stdout), output);
    for f in files {
        flows::read_file(f, format, &mut printer)?;
    }
    printer.flush()?;
    if stats {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("{}", printer.summary());
        }
    }
    Ok(())
}

/// `mamori pseudonymise`: lets a carrier check its key and setup against another
/// implementation (e.g. yacryptopan). Bad lines are reported with their number and skipped;
/// the exit status says whether there were any.
fn pseudonymise(key_hex: &str) -> anyhow::Result<()> {
    use std::io::{BufRead, Write};
    let key = mamori_flow::CryptoPanKey::from_hex(key_hex.trim()).map_err(|e| {
        anyhow::anyhow!("--key-hex: {e} (expected 64 hex digits: AES key, then padding key)")
    })?;
    let mut p = mamori_flow::Pseudonymiser::new(&key);
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut bad = 0u64;
    for (n, line) in stdin.lines().enumerate() {
        let line = line?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        match text.parse::<std::net::IpAddr>() {
            Ok(addr) => writeln!(out, "{addr}\t{}", p.pseudonymise(addr))?,
            Err(_) => {
                bad += 1;
                #[allow(clippy::print_stderr)]
                {
                    eprintln!(
                        "line {}: {:?} is not an IPv4 or IPv6 address; skipped",
                        n + 1,
                        text.chars().take(60).collect::<String>()
                    );
                }
            }
        }
    }
    out.flush()?;
    if bad > 0 {
        anyhow::bail!("{bad} line(s) were not addresses");
    }
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    // The sensor has its own configuration file (not the centre's): handled first.
    let command = match cli.command {
        cli::Command::Sensor(cmd) => return sensor::command(cmd, &cli.global).await,
        other => other,
    };
    let cfg = config::load(&cli.global, command.serve_overrides())?;
    match command {
        cli::Command::Serve(_) => {
            logging::init(&cfg.log)?;
            serve::serve(cfg).await
        }
        cli::Command::Init => serve::init(&cfg).await,
        cli::Command::Admin(cmd) => admin::run(&cfg, cmd, cli.global.json).await,
        cli::Command::Config(cli::ConfigCommand::Show) => config::show(&cfg),
        cli::Command::Flows {
            files,
            format,
            output,
            stats,
        } => {
            tokio::task::spawn_blocking(move || flows_command(&files, format, output, stats))
                .await?
        }
        cli::Command::Detect {
            files,
            format,
            profile,
            indicators,
            top,
            json,
            post,
            token,
            tlp,
        } => {
            let args = detect::DetectArgs {
                files,
                format,
                profile,
                indicators,
            };
            let post = post.map(|url| detect::Post {
                url,
                token: token.unwrap_or_default(),
                tlp,
            });
            tokio::task::spawn_blocking(move || detect::detect(&args, top, json, post.as_ref()))
                .await?
        }
        cli::Command::Eval {
            files,
            format,
            profile,
            indicators,
            labels,
            ground_truth,
            dataset,
            min_score,
        } => {
            let args = detect::DetectArgs {
                files,
                format,
                profile,
                indicators,
            };
            tokio::task::spawn_blocking(move || {
                let gt = ground_truth.as_deref().zip(dataset.as_deref());
                detect::eval(&args, &labels, gt, min_score)
            })
            .await?
        }
        cli::Command::Sensor(cmd) => sensor::command(cmd, &cli.global).await,
        cli::Command::Pseudonymise { key_hex } => {
            tokio::task::spawn_blocking(move || pseudonymise(&key_hex)).await?
        }
        cli::Command::Collect {
            listen,
            output,
            stats_every,
        } => collect::run(listen, output, stats_every).await,
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
        cli::Command::Export {
            centre,
            since,
            types,
        } => {
            tokio::task::spawn_blocking(move || {
                let centre = report::Centre::from(centre);
                let args = export::ExportArgs { since, types };
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                let n = export::export(&centre, &args, &mut out)?;
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("exported {n} objects");
                }
                anyhow::Ok(())
            })
            .await?
        }
        cli::Command::Report(cmd) => {
            let json = cli.global.json;
            tokio::task::spawn_blocking(move || match cmd {
                cli::ReportCommand::Submit {
                    file,
                    centre,
                    idempotency_key,
                } => report::submit(&centre.into(), &file, idempotency_key.as_deref()),
                cli::ReportCommand::Status { id, centre } => {
                    report::status(&centre.into(), id, json)
                }
                cli::ReportCommand::Orgs { centre } => report::orgs(&centre.into(), json),
            })
            .await?
        }
        cli::Command::Audit(cli::AuditCommand::Report { from, to }) => {
            admin::report(&cfg, &from, &to, cli.global.json).await
        }
    }
}
