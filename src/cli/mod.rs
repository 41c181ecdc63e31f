//! The command line: parsing (clap) and one file per command. Every command returns its exit
//! status; 2 always means "could not do the job" (usage, refusal, unsafe input, failed scan).

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

pub mod context;
pub mod fleet_cmds;
pub mod fix_config;
pub mod generate;
pub mod output;
pub mod progress;
pub mod rollout_cmds;
pub use crate::source;

pub use crate::exit::{EXIT_ATTENTION, EXIT_FAILURE, EXIT_OK};

#[derive(Debug, Parser)]
#[command(
    name = "codex-fleet",
    version,
    about = "Find codex agents whose sandbox cannot start, explain why, and roll out the durable fix",
    long_about = "Find codex agents whose sandbox cannot start, explain why, and roll out the durable fix \
(sandbox_mode = \"danger-full-access\", approval_policy = \"never\": the container is the isolation boundary).",
    after_help = "Exit status: 0 ok; 1 attention needed (stalled agents, changes planned, failures); 2 could not do the job."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Without a command: the interactive console.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags every command accepts, before or after the command name.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Machine-readable output on stdout (logs and notes never go to stdout).
    #[arg(long, global = true)]
    pub json: bool,
    /// Make every mutation impossible: no file written, no restart, no rollback.
    /// (`--read-only=false` is refused in a context marked read-only.)
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL", hide_default_value = true, hide_possible_values = true)]
    pub read_only: bool,
    /// The named context of ~/.config/codex-fleet/config.toml to run in (default: its current_context).
    #[arg(long, global = true, env = "CODEX_FLEET_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,
    #[command(flatten)]
    pub source: source::SourceArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Discover, probe and diagnose every agent; exit 1 when any needs attention.
    Scan,
    /// One agent in full: evidence, config (redacted), findings, plan.
    Show(fleet_cmds::ShowArgs),
    /// The fix for each agent that needs one, as per-file diffs (secrets redacted).
    Plan(fleet_cmds::PlanArgs),
    /// Apply a plan: canary, waves, stop on errors, restart, verify.
    Apply(rollout_cmds::ApplyArgs),
    /// The runs in the journal, newest first; `runs RUN_ID`: one run, agent by agent.
    Runs(rollout_cmds::RunsArgs),
    /// The boot assertion on each agent.
    Verify(fleet_cmds::VerifyArgs),
    /// Restore every file a run changed, byte for byte, then restart.
    Rollback(rollout_cmds::RollbackArgs),
    /// Break the host locks a run left behind (journaled, audited).
    Unlock(rollout_cmds::UnlockArgs),
    /// The audit report: fleet state and run history.
    Report(fleet_cmds::ReportArgs),
    /// Fix one local config.toml: print the unified diff (secrets redacted), or write it.
    FixConfig(fix_config::FixConfigArgs),
    /// Shell completions for bash, zsh, fish, elvish or powershell, on stdout.
    Completions(generate::CompletionsArgs),
    /// The manual page (roff), on stdout; `--out-dir DIR` writes one page per command.
    Man(generate::ManArgs),
    /// Named contexts (source, agent and rollout defaults, read-only): list, show, use.
    Context(context::ContextArgs),
}

/// Parse the process's arguments and run; returns the exit status.
pub fn main() -> u8 {
    let parsed = Cli::command().try_get_matches().and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)));
    let (mut cli, matches) = match parsed {
        Ok(x) => x,
        Err(e) => {
            if let Some(help) = local_command_help(&e) {
                print!("{help}");
                return EXIT_OK;
            }
            let _ = e.print();
            return if e.use_stderr() { EXIT_FAILURE } else { EXIT_OK };
        }
    };
    let resolved = match context::resolve(&mut cli, &matches) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let g = &cli.global;
    if let (Some(name), false, Some(_)) = (&resolved.context, g.json, &cli.command) {
        eprintln!("context: {name}{}", if g.read_only { " (read-only)" } else { "" });
    }
    if let Err(e) = g.source.validate() {
        eprintln!("codex-fleet: {e}");
        return EXIT_FAILURE;
    }
    let Some(command) = &cli.command else {
        // The context's rollout options are where every apply confirmation starts.
        let set = |k: &str| resolved.settings.iter().find(|(n, _, _)| *n == k).map(|(_, v, _)| v.clone());
        let defaults = crate::tui::model::confirm::ApplyForm::from_context(set("canary"), set("wave"), set("max_errors"), set("stable_timeout"));
        return crate::tui::run_with_defaults(&g.source, g.read_only, resolved.context.as_deref(), defaults);
    };
    match command {
        Command::FixConfig(args) => fix_config::run(g, args),
        Command::Runs(a) => rollout_cmds::runs(g, a),
        Command::Completions(a) => generate::completions(a),
        Command::Man(a) => generate::man(a),
        Command::Context(a) => context::run(g, a, &resolved),
        other => {
            let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("codex-fleet: cannot start the async runtime: {e}");
                    return EXIT_FAILURE;
                }
            };
            rt.block_on(async {
                match other {
                    Command::Scan => fleet_cmds::scan(g).await,
                    Command::Show(a) => fleet_cmds::show(g, a).await,
                    Command::Plan(a) => fleet_cmds::plan(g, a).await,
                    Command::Verify(a) => fleet_cmds::verify(g, a).await,
                    Command::Report(a) => fleet_cmds::report(g, a).await,
                    Command::Apply(a) => rollout_cmds::apply(g, a).await,
                    Command::Rollback(a) => rollout_cmds::rollback(g, a).await,
                    Command::Unlock(a) => rollout_cmds::unlock(g, a).await,
                    Command::FixConfig(_) | Command::Runs(_) | Command::Completions(_) | Command::Man(_) | Command::Context(_) => unreachable!(),
                }
            })
        }
    }
}

/// The help sections of the fleet source flags (`source::SourceArgs`' help headings): global,
/// so clap lists them under every command, but a command that reads no fleet has no use for them.
pub const FLEET_HELP_HEADINGS: &[&str] = &["Fleet source", "AWS", "Docker", "Demo", "Agents"];

/// The commands that read no fleet (their help leaves out [`FLEET_HELP_HEADINGS`]).
pub(crate) const LOCAL_COMMANDS: &[&str] = &["fix-config"];

/// `fix-config --help` (and `help fix-config`) without the fleet flags that do not apply to it.
/// (clap propagates global arguments into every subcommand when it builds the command; hiding
/// them there after the build breaks parsing, and a help template's `{options}` includes them:
/// so the rendered help is cut instead, section by section. Plain text: no colour.)
fn local_command_help(e: &clap::Error) -> Option<String> {
    if e.kind() != clap::error::ErrorKind::DisplayHelp {
        return None;
    }
    let text = e.render().to_string();
    let usage = text.lines().find(|l| l.starts_with("Usage: "))?;
    let cmd = usage.strip_prefix("Usage: codex-fleet ")?.split_whitespace().next()?;
    if !LOCAL_COMMANDS.contains(&cmd) {
        return None;
    }
    Some(strip_help_sections(&text, FLEET_HELP_HEADINGS))
}

/// `help` without the sections headed by `headings` (a section: its `Heading:` line up to the
/// next blank line).
pub fn strip_help_sections(help: &str, headings: &[&str]) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in help.split_inclusive('\n') {
        let bare = line.trim_end();
        if !line.starts_with(' ') && bare.ends_with(':') && headings.contains(&&bare[..bare.len() - 1]) {
            skipping = true;
            continue;
        }
        if skipping {
            if bare.is_empty() {
                skipping = false;
            }
            continue;
        }
        out.push_str(line);
    }
    out
}

/// Print an error the contract's way and return exit 2. Errors quote host text (names, paths,
/// stderr): made terminal-safe.
pub fn fail(msg: impl std::fmt::Display) -> u8 {
    eprintln!("codex-fleet: {}", crate::term_safe::text(&msg.to_string()));
    EXIT_FAILURE
}
