//! `edge`: parses n2n's command line, config file and environment, then runs.

use std::process::ExitCode;

use n2n_daemon::{logging, os};
use n2n_edge::cli::{CliError, EdgeConfig};
use tracing::error;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--generate") {
        return match argv.get(2).and_then(|k| n2n_edge::cli::generate(k)) {
            Some(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("edge: error: --generate takes man, bash, zsh or fish");
                ExitCode::from(1)
            }
        };
    }
    let cfg = match EdgeConfig::from_argv(std::env::args().collect(), |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(CliError::Help(text)) => {
            println!("{}", text.trim_end());
            return ExitCode::SUCCESS;
        }
        Err(CliError::Bad(line)) => {
            eprintln!("edge: error: {line}");
            return ExitCode::from(1);
        }
    };
    if !cfg.foreground
        && let Err(e) = os::daemonize()
    {
        eprintln!("edge: error: cannot run as a daemon: {e}");
        return ExitCode::from(1);
    }
    let log = logging::init("edge", cfg.verbosity, !cfg.foreground);
    if cfg.key.is_some() && cfg.key.as_deref() == Some(&*cfg.community.text()) {
        tracing::warn!("the community name and the key are the same");
    }
    match n2n_edge::runtime::run(cfg, Some(log)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("edge: error: {e}");
            ExitCode::from(1)
        }
    }
}
