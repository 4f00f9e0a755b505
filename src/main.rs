//! The `gatehouse` binary: parses the command line and hands off to the library's commands.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = gatehouse::cli::Cli::parse();
    gatehouse::cli::main(cli)
}
