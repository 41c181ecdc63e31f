//! The command line: parsing (clap) and one file per command. Every command returns its exit
//! status; 2 always means "could not do the job" (usage, refusal, unsafe input).

use clap::{Args, Parser, Subcommand};

pub mod fix_config;

/// Exit statuses of the contract.
pub const EXIT_OK: u8 = 0;
pub const EXIT_ATTENTION: u8 = 1;
pub const EXIT_FAILURE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "codex-fleet",
    version,
    about = "Find codex agents whose sandbox cannot start, explain why, and roll out the durable fix",
    long_about = "Find codex agents whose sandbox cannot start, explain why, and roll out the durable fix \
(sandbox_mode = \"danger-full-access\", approval_policy = \"never\": the container is the isolation boundary).",
    arg_required_else_help = true,
    after_help = "Exit status: 0 ok; 1 attention needed (e.g. --check found a change to make); 2 could not do the job."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts, before or after the command name.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Machine-readable output on stdout (logs and notes never go to stdout).
    #[arg(long, global = true)]
    pub json: bool,
    /// Make every mutation impossible: no file written, no restart, no rollback.
    #[arg(long, global = true)]
    pub read_only: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fix one local config.toml: print the unified diff (secrets redacted), or write it.
    FixConfig(fix_config::FixConfigArgs),
}

/// Parse the process's arguments and run; returns the exit status.
pub fn main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_FAILURE } else { EXIT_OK };
        }
    };
    match cli.command {
        Command::FixConfig(args) => fix_config::run(&cli.global, &args),
    }
}
