//! `completions SHELL` and `man`: both generated from the clap definitions, so a new command or
//! flag reaches the shell and the manual page without anyone remembering to add it.
//! docs/man/ holds the generated pages (`codex-fleet man --out-dir docs/man`); a test fails
//! when they are stale.

use std::path::PathBuf;

use clap::{Args, CommandFactory};

use super::{fail, Cli, EXIT_OK};

#[derive(Debug, Args)]
#[command(after_help = "Load in bash:  source <(codex-fleet completions bash)\n\
Or install:    codex-fleet completions bash > /etc/bash_completion.d/codex-fleet")]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
#[command(after_help = "Read it:  codex-fleet man | man -l -")]
pub struct ManArgs {
    /// Write every page (codex-fleet.1 and one codex-fleet-COMMAND.1 per command) into DIR
    /// instead of printing codex-fleet.1.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// The completion script on stdout.
pub fn completions(a: &CompletionsArgs) -> u8 {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "codex-fleet", &mut out);
    let mut text = String::from_utf8_lossy(&out).into_owned();
    if a.shell == clap_complete::Shell::Bash {
        // clap_complete 4.6 spells the per-command case labels of a hyphenated program name
        // differently from the names it dispatches on (`codex__subcmd__fleet__subcmd__apply` vs
        // `codex__fleet__subcmd__apply`): flags after a command would never complete.
        text = text.replace("codex__subcmd__fleet__subcmd__", "codex__fleet__subcmd__");
    }
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
    EXIT_OK
}

/// The command tree the manual pages describe: built (global flags propagated), then the fleet
/// flags hidden on the commands that read no fleet (`fix-config`), as its `--help` does. Only
/// for rendering: parsing uses `Cli::command()` untouched.
fn man_command() -> clap::Command {
    // Built, clap would add its `help` subcommands to the pages: not a page of their own.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    let with_subs: Vec<String> = cmd.get_subcommands().filter(|c| c.has_subcommands()).map(|c| c.get_name().to_string()).collect();
    for name in with_subs {
        cmd = cmd.mut_subcommand(name, |c| c.disable_help_subcommand(true));
    }
    cmd.build();
    for name in super::LOCAL_COMMANDS {
        cmd = cmd.mut_subcommand(*name, |mut sc| {
            let fleet: Vec<clap::Id> = sc
                .get_arguments()
                .filter(|a| a.get_help_heading().is_some_and(|h| super::FLEET_HELP_HEADINGS.contains(&h)))
                .map(|a| a.get_id().clone())
                .collect();
            for id in fleet {
                sc = sc.mut_arg(id, |a| a.hide(true));
            }
            sc
        });
    }
    cmd
}

/// The manual page on stdout, or every page into a directory.
pub fn man(a: &ManArgs) -> u8 {
    match &a.out_dir {
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(dir).and_then(|_| clap_mangen::generate_to(man_command(), dir)) {
                return fail(format_args!("{}: cannot write the manual pages: {e}", dir.display()));
            }
            eprintln!("manual pages written to {}", dir.display());
            EXIT_OK
        }
        None => {
            let mut out = Vec::new();
            if let Err(e) = clap_mangen::Man::new(man_command().disable_help_subcommand(true)).render(&mut out) {
                return fail(format_args!("cannot render the manual page: {e}"));
            }
            use std::io::Write;
            let _ = std::io::stdout().write_all(&out);
            EXIT_OK
        }
    }
}
