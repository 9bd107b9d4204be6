//! The `because` command line as a library: the binary parses and calls
//! [`run`]; tests and embedders (with their own model kinds registered in
//! `because_models::registry`) call [`run_args`].
//!
//! The crate is thin glue: argument parsing, library calls and printing.

mod args;
mod commands;
mod experiment;
mod modeling;
mod progress;
mod using;

pub use args::Cli;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    progress::init(cli.quiet, cli.verbose);
    commands::run(cli)
}

/// Parses `args` (the first is the program name) and runs them.
pub fn run_args<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::Parser;
    because_service::register_models();
    run(Cli::try_parse_from(args)?)
}

/// Makes a closed standard output (`because explain … | head`) end the
/// program quietly instead of with a panic and a backtrace.
pub fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
