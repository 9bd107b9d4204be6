//! The `because` binary.

use clap::Parser;

fn main() -> std::process::ExitCode {
    because_cli::quiet_on_closed_pipe();
    because_service::register_models();
    let cli = because_cli::Cli::parse();
    match because_cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
