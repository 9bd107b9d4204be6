//! The `because` command line as a library: the binary parses and calls
//! [`run`]; tests and embedders (with their own model kinds registered in
//! `because_models::registry`) call [`run_args`].
//!
//! The crate is thin glue: argument parsing, library calls and printing.
//! This file dispatches each command to its module in `cmd`; those use
//! the leaf modules `args` (every flag checked), `io` (files in and out),
//! `print` and `progress`. No module imports one that imports it back
//! (a test walks the `use crate::` lines).

mod args;
mod cmd;
mod io;
mod print;
mod progress;

pub use args::Cli;
use args::Command;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    progress::init(cli.quiet, cli.verbose);
    match cli.command {
        Command::Demo(a) => cmd::demo::run(&a),
        Command::Eda(a) => cmd::data::eda(&a),
        Command::Clean(a) => cmd::data::clean(&a),
        Command::Split(a) => cmd::data::split(&a),
        Command::Generate(a) => cmd::data::generate(&a),
        Command::Train(a) => cmd::train::run(&a),
        Command::Evaluate(a) => cmd::evaluate::run(&a),
        Command::Tune(a) => cmd::tune::run(&a),
        Command::Recommend(a) => cmd::use_model::recommend(&a),
        Command::Similar(a) => cmd::use_model::similar(&a),
        Command::Explain(a) => cmd::use_model::explain(&a),
        Command::ExplainEval(a) => cmd::explain_eval::run(&a),
        Command::Serve(a) => cmd::serve::run(&a),
        Command::Run(a) => cmd::run::run(&a.file, a.out.as_deref(), a.index),
        Command::Models => {
            cmd::models::run();
            Ok(())
        }
    }
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
