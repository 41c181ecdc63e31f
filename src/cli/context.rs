//! Named contexts, as kubectl and k9s keep them: `$XDG_CONFIG_HOME/codex-fleet/config.toml` holds
//! the flags an operator would otherwise repeat on every command (the fleet source and its
//! options, the agent flags, rollout defaults), and `read_only = true` marks a context that must
//! never mutate: a flag cannot silently undo that (`--read-only=false` is refused).
//!
//! Precedence, per setting: a flag, then an environment variable (`CODEX_FLEET_CONTEXT` for the
//! context itself; the AWS SDK's and Docker's own variables for what they already read), then
//! the context, then the built-in default. The file is read with toml_edit and edited only by
//! `context use`, which keeps every comment and key it does not change.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Subcommand};
use serde_json::json;
use toml_edit::{DocumentMut, Item, Value};

use super::{fail, Cli, Command, GlobalArgs, EXIT_OK};

#[derive(Debug, Args)]
pub struct ContextArgs {
    #[command(subcommand)]
    pub action: ContextAction,
}

#[derive(Debug, Subcommand)]
pub enum ContextAction {
    /// The contexts of the config file; `*` marks the current one.
    List,
    /// The settings a command would run with (the context's, or NAME's), and where each comes from.
    Show {
        /// A context other than the selected one.
        name: Option<String>,
    },
    /// Make NAME the current context (written to the config file; comments kept).
    Use {
        /// The context to select.
        name: String,
    },
}

/// The config file: `$XDG_CONFIG_HOME/codex-fleet/config.toml`, else `~/.config/codex-fleet/config.toml`.
pub fn config_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".config")
    });
    base.join("codex-fleet").join("config.toml")
}

pub use super::output::active_context as active;

/// One context's settings, each optional (absent: the next layer decides).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub name: String,
    pub source: Option<super::source::Kind>,
    pub tag: Vec<String>,
    pub instance: Vec<String>,
    pub region: Vec<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub docker_host: Option<String>,
    pub demo_scale: Option<String>,
    pub demo_latency: Option<u64>,
    pub demo_state: Option<PathBuf>,
    pub agent_filter: Option<String>,
    pub agent_user: Option<String>,
    pub gitea_url: Option<String>,
    pub read_only: bool,
    pub canary: Option<usize>,
    pub wave: Option<String>,
    pub max_errors: Option<String>,
    pub stable_timeout: Option<u64>,
}

/// The config file, read and checked.
pub struct ConfigFile {
    pub path: PathBuf,
    pub text: String,
    pub current: Option<String>,
    pub contexts: Vec<Context>,
}

const KEYS: &[&str] = &[
    "source", "tag", "instance", "region", "profile", "endpoint_url", "docker_host", "demo_scale", "demo_latency",
    "demo_state", "agent_filter", "agent_user", "gitea_url", "read_only", "canary", "wave", "max_errors", "stable_timeout",
];

impl ConfigFile {
    /// Read the file; `Ok(None)` when there is none. Every error names the file and what is wrong.
    pub fn load() -> Result<Option<ConfigFile>, String> {
        let path = config_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
        };
        let doc = crate::codex::config::parse(&text).map_err(|p| format!("{}: {p}", path.display()))?;
        let at = |what: String| format!("{}: {what}", path.display());
        let current = match doc.get("current_context") {
            None => None,
            Some(i) => Some(i.as_str().ok_or_else(|| at("current_context must be a string".into()))?.to_string()),
        };
        for (k, _) in doc.iter() {
            if k != "current_context" && k != "contexts" {
                return Err(at(format!("unknown key `{k}` (expected current_context and [contexts.NAME] tables)")));
            }
        }
        let mut contexts = Vec::new();
        if let Some(item) = doc.get("contexts") {
            let table = item.as_table_like().ok_or_else(|| at("`contexts` must be a table of [contexts.NAME]".into()))?;
            for (name, item) in table.iter() {
                contexts.push(parse_context(name, item).map_err(|e| at(format!("[contexts.{name}]: {e}")))?);
            }
        }
        if let Some(c) = &current {
            if !contexts.iter().any(|x| &x.name == c) {
                return Err(at(format!("current_context = \"{c}\" names no [contexts.{c}]")));
            }
        }
        Ok(Some(ConfigFile { path, text, current, contexts }))
    }

    fn get(&self, name: &str) -> Result<&Context, String> {
        self.contexts.iter().find(|c| c.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.contexts.iter().map(|c| c.name.as_str()).collect();
            format!("no context `{name}` in {} (contexts: {})", self.path.display(), if names.is_empty() { "none".into() } else { names.join(", ") })
        })
    }
}

fn parse_context(name: &str, item: &Item) -> Result<Context, String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err("a context name is letters, digits, `-`, `_` and `.`".into());
    }
    let t = item.as_table_like().ok_or("must be a table")?;
    let mut c = Context { name: name.to_string(), ..Default::default() };
    for (k, v) in t.iter() {
        if !KEYS.contains(&k) {
            return Err(format!("unknown key `{k}` (known: {})", KEYS.join(", ")));
        }
        let v = v.as_value().ok_or_else(|| format!("`{k}` must be a value, not a table"))?;
        let s = || v.as_str().map(str::to_string).ok_or_else(|| format!("`{k}` must be a string"));
        let n = || v.as_integer().filter(|n| *n >= 0).ok_or_else(|| format!("`{k}` must be a whole number"));
        let list = || -> Result<Vec<String>, String> {
            match v {
                Value::String(s) => Ok(vec![s.value().clone()]),
                Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string).ok_or_else(|| format!("`{k}` must be strings"))).collect(),
                _ => Err(format!("`{k}` must be a string or an array of strings")),
            }
        };
        match k {
            "source" => {
                c.source = Some(match s()?.as_str() {
                    "aws" => super::source::Kind::Aws,
                    "docker" => super::source::Kind::Docker,
                    "demo" => super::source::Kind::Demo,
                    other => return Err(format!("source = \"{other}\": expected \"aws\", \"docker\" or \"demo\"")),
                })
            }
            "tag" => {
                c.tag = list()?;
                for t in &c.tag {
                    super::source::parse_tag(t)?;
                }
            }
            "instance" => c.instance = list()?,
            "region" => c.region = list()?,
            "profile" => c.profile = Some(s()?),
            "endpoint_url" => c.endpoint_url = Some(s()?),
            "docker_host" => c.docker_host = Some(s()?),
            "demo_scale" => {
                let x = s()?;
                super::source::parse_scale(&x)?;
                c.demo_scale = Some(x);
            }
            "demo_latency" => c.demo_latency = Some(n()? as u64),
            "demo_state" => c.demo_state = Some(PathBuf::from(s()?)),
            "agent_filter" => {
                let x = s()?;
                x.parse::<crate::fleet::filter::AgentFilter>().map_err(|e| format!("agent_filter {e}"))?;
                c.agent_filter = Some(x);
            }
            "agent_user" => c.agent_user = Some(s()?),
            "gitea_url" => c.gitea_url = Some(s()?),
            "read_only" => c.read_only = v.as_bool().ok_or("`read_only` must be true or false")?,
            "canary" => c.canary = Some(n()? as usize),
            "wave" | "max_errors" => {
                let x = match v {
                    Value::Integer(i) => i.value().to_string(),
                    _ => s()?,
                };
                // The same checks as the flags' (rollout::options), naming the key.
                let checked = if k == "wave" { crate::rollout::options::parse_wave(&x) } else { crate::rollout::options::parse_max_errors(&x) };
                checked.map_err(|e| format!("`{k}`: {e}"))?;
                if k == "wave" {
                    c.wave = Some(x)
                } else {
                    c.max_errors = Some(x)
                }
            }
            "stable_timeout" => {
                let secs = n()?;
                crate::rollout::options::parse_restart_timeout(&secs.to_string()).map_err(|e| format!("`stable_timeout`: {e}"))?;
                c.stable_timeout = Some(secs as u64)
            }
            _ => unreachable!(),
        }
    }
    Ok(c)
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env(&'static str),
    Context(String),
    /// The context chosen by the file's `current_context`.
    Current,
    BuiltIn,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag => f.write_str("flag"),
            Origin::Env(v) => write!(f, "env {v}"),
            Origin::Context(n) => write!(f, "context {n}"),
            Origin::Current => f.write_str("current_context"),
            Origin::BuiltIn => f.write_str("built-in"),
        }
    }
}

/// What `resolve` decided: the context in force and, per setting, value and origin.
#[derive(Debug, Default)]
pub struct Resolved {
    pub context: Option<String>,
    pub context_origin: Option<Origin>,
    pub settings: Vec<(&'static str, String, Origin)>,
}

fn given(m: &ArgMatches, id: &str) -> bool {
    matches!(m.value_source(id), Some(ValueSource::CommandLine) | Some(ValueSource::EnvVariable))
}

/// The first of `vars` that is set and not empty.
fn env_of(vars: &[&'static str]) -> Option<&'static str> {
    vars.iter().copied().find(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// Choose the context (`--context`, `CODEX_FLEET_CONTEXT`, the file's `current_context`) and
/// fill every setting no flag gave from it, unless an environment variable of the tool that
/// reads it is set. Refuses `--read-only=false` on a read-only context.
pub fn resolve(cli: &mut Cli, m: &ArgMatches) -> Result<Resolved, String> {
    // `context show NAME` shows NAME as if it had been chosen with --context.
    let show_name = match &cli.command {
        Some(Command::Context(ContextArgs { action: ContextAction::Show { name: Some(n) } })) => Some(n.clone()),
        _ => None,
    };
    let file = ConfigFile::load()?;
    let (name, origin) = if let Some(n) = show_name {
        (Some(n), Some(Origin::Flag))
    } else if let Some(n) = cli.global.context.clone() {
        let o = if m.value_source("context") == Some(ValueSource::EnvVariable) { Origin::Env("CODEX_FLEET_CONTEXT") } else { Origin::Flag };
        (Some(n), Some(o))
    } else {
        (file.as_ref().and_then(|f| f.current.clone()), Some(Origin::Current))
    };
    let ctx = match (&name, &file) {
        (None, _) => Context::default(),
        (Some(n), Some(f)) => f.get(n)?.clone(),
        (Some(n), None) => return Err(format!("no context `{n}`: {} does not exist", config_path().display())),
    };
    let mut r = Resolved { context: name.clone(), context_origin: name.as_ref().and(origin), settings: Vec::new() };
    let from_ctx = Origin::Context(ctx.name.clone());
    let g: &mut GlobalArgs = &mut cli.global;

    // The source: a flag, else the context's, else --aws.
    let s = &mut g.source;
    let src_origin = if s.aws || s.docker || s.demo {
        Origin::Flag
    } else if let Some(k) = ctx.source {
        match k {
            super::source::Kind::Aws => s.aws = true,
            super::source::Kind::Docker => s.docker = true,
            super::source::Kind::Demo => s.demo = true,
        }
        from_ctx.clone()
    } else {
        Origin::BuiltIn
    };
    let kind = match s.kind() {
        super::source::Kind::Aws => "aws",
        super::source::Kind::Docker => "docker",
        super::source::Kind::Demo => "demo",
    };
    r.settings.push(("source", kind.into(), src_origin));

    // Lists: a flag, else the context's.
    for (key, flag, ctxv) in [("tag", &mut s.tags, &ctx.tag), ("instance", &mut s.instances, &ctx.instance), ("region", &mut s.regions, &ctx.region)] {
        let env = if key == "region" { env_of(&["AWS_REGION", "AWS_DEFAULT_REGION"]) } else { None };
        let origin = if !flag.is_empty() {
            Origin::Flag
        } else if let Some(v) = env {
            r.settings.push((key, std::env::var(v).unwrap_or_default(), Origin::Env(v)));
            continue;
        } else if !ctxv.is_empty() {
            *flag = ctxv.clone();
            from_ctx.clone()
        } else {
            Origin::BuiltIn
        };
        let shown = if flag.is_empty() && key == "tag" { "Role=workspace".to_string() } else { flag.join(",") };
        r.settings.push((key, shown, origin));
    }

    // Options: a flag, else the tool's environment variable, else the context's.
    fn opt<T: Clone + std::fmt::Display>(
        r: &mut Resolved,
        key: &'static str,
        flag: &mut Option<T>,
        env: &[&'static str],
        ctxv: Option<T>,
        from_ctx: &Origin,
        builtin: &str,
    ) {
        if let Some(v) = flag {
            r.settings.push((key, v.to_string(), Origin::Flag));
        } else if let Some(e) = env_of(env) {
            r.settings.push((key, std::env::var(e).unwrap_or_default(), Origin::Env(e)));
        } else if let Some(v) = ctxv {
            r.settings.push((key, v.to_string(), from_ctx.clone()));
            *flag = Some(v);
        } else {
            r.settings.push((key, builtin.to_string(), Origin::BuiltIn));
        }
    }
    opt(&mut r, "profile", &mut s.profile, &["AWS_PROFILE"], ctx.profile.clone(), &from_ctx, "(the AWS credential chain)");
    opt(&mut r, "endpoint_url", &mut s.endpoint_url, &["AWS_ENDPOINT_URL"], ctx.endpoint_url.clone(), &from_ctx, "(the AWS default)");
    opt(&mut r, "docker_host", &mut s.docker_host, &["DOCKER_HOST"], ctx.docker_host.clone(), &from_ctx, "(the default socket)");
    opt(&mut r, "demo_scale", &mut s.demo_scale, &[], ctx.demo_scale.clone(), &from_ctx, "8x6");
    opt(&mut r, "demo_latency", &mut s.demo_latency, &[], ctx.demo_latency, &from_ctx, "200");
    let mut state = s.demo_state.as_ref().map(|p| p.display().to_string());
    opt(&mut r, "demo_state", &mut state, &[], ctx.demo_state.as_ref().map(|p| p.display().to_string()), &from_ctx, "(none)");
    s.demo_state = state.map(PathBuf::from);
    let mut filter = s.agent_filter.as_ref().map(|f| f.to_string());
    opt(&mut r, "agent_filter", &mut filter, &[], ctx.agent_filter.clone(), &from_ctx, "image=codex");
    s.agent_filter = match filter {
        Some(f) => Some(f.parse().map_err(|e| format!("context {}: agent_filter {e}", ctx.name))?),
        None => None,
    };
    opt(&mut r, "agent_user", &mut s.agent_user, &[], ctx.agent_user.clone(), &from_ctx, "(the owner of codex)");
    opt(&mut r, "gitea_url", &mut s.gitea_url, &[], ctx.gitea_url.clone(), &from_ctx, super::source::DEFAULT_GITEA);

    // read_only: the context's `true` is a floor no flag lowers.
    if ctx.read_only {
        if given(m, "read_only") && !g.read_only {
            return Err(format!(
                "refused: context {} is read-only; --read-only=false cannot override it (choose another context with --context)",
                ctx.name
            ));
        }
        g.read_only = true;
        r.settings.push(("read_only", "true".into(), from_ctx.clone()));
    } else {
        let o = if given(m, "read_only") { Origin::Flag } else { Origin::BuiltIn };
        r.settings.push(("read_only", g.read_only.to_string(), o));
    }

    // Rollout defaults, for `apply`.
    if let Some(Command::Apply(a)) = &mut cli.command {
        let am = m.subcommand_matches("apply").unwrap_or(m);
        let pick = |id: &str, has: bool| if given(am, id) { Origin::Flag } else if has { from_ctx.clone() } else { Origin::BuiltIn };
        let o = pick("canary", ctx.canary.is_some());
        if o != Origin::Flag {
            if let Some(v) = ctx.canary {
                a.canary = v;
            }
        }
        r.settings.push(("canary", a.canary.to_string(), o));
        let o = pick("wave", ctx.wave.is_some());
        if o != Origin::Flag {
            if let Some(v) = &ctx.wave {
                a.wave = v.clone();
            }
        }
        r.settings.push(("wave", a.wave.clone(), o));
        let o = pick("max_errors", ctx.max_errors.is_some());
        if o != Origin::Flag {
            if let Some(v) = &ctx.max_errors {
                a.max_errors = v.clone();
            }
        }
        r.settings.push(("max_errors", a.max_errors.clone(), o));
        let o = pick("stable_timeout", ctx.stable_timeout.is_some());
        if o != Origin::Flag {
            if let Some(v) = ctx.stable_timeout {
                a.stable_timeout = v;
            }
        }
        r.settings.push(("stable_timeout", a.stable_timeout.to_string(), o));
    } else {
        for (k, v) in [
            ("canary", ctx.canary.map(|v| v.to_string())),
            ("wave", ctx.wave.clone()),
            ("max_errors", ctx.max_errors.clone()),
            ("stable_timeout", ctx.stable_timeout.map(|v| v.to_string())),
        ] {
            if let Some(v) = v {
                r.settings.push((k, v, from_ctx.clone()));
            }
        }
    }
    if let Some(n) = &r.context {
        super::output::set_active_context(n);
    }
    Ok(r)
}

/// `context list|show|use`.
pub fn run(g: &GlobalArgs, a: &ContextArgs, resolved: &Resolved) -> u8 {
    match &a.action {
        ContextAction::List => list(g),
        ContextAction::Show { .. } => show(g, resolved),
        ContextAction::Use { name } => use_context(name),
    }
}

fn list(g: &GlobalArgs) -> u8 {
    let file = match ConfigFile::load() {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let (current, contexts) = match &file {
        Some(f) => (f.current.clone(), f.contexts.clone()),
        None => (None, Vec::new()),
    };
    let src = |c: &Context| match c.source {
        Some(super::source::Kind::Aws) | None => "aws",
        Some(super::source::Kind::Docker) => "docker",
        Some(super::source::Kind::Demo) => "demo",
    };
    if g.json {
        let v = json!({
            "config": config_path().display().to_string(),
            "current": current,
            "contexts": contexts.iter().map(|c| json!({
                "name": c.name, "source": src(c), "read_only": c.read_only, "current": current.as_deref() == Some(c.name.as_str()),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&super::output::document("context-list", v)).unwrap_or_default());
    } else {
        if file.is_none() {
            eprintln!("no contexts: {} does not exist", config_path().display());
        }
        let rows: Vec<Vec<String>> = contexts
            .iter()
            .map(|c| {
                vec![
                    if current.as_deref() == Some(c.name.as_str()) { "*".into() } else { String::new() },
                    c.name.clone(),
                    src(c).into(),
                    if c.read_only { "read-only".into() } else { String::new() },
                ]
            })
            .collect();
        print!("{}", super::output::table(&["CURRENT", "NAME", "SOURCE", "MODE"], &rows));
    }
    EXIT_OK
}

fn show(g: &GlobalArgs, r: &Resolved) -> u8 {
    if g.json {
        let v = json!({
            "config": config_path().display().to_string(),
            "context_origin": r.context_origin.as_ref().map(|o| o.to_string()),
            "settings": r.settings.iter().map(|(k, v, o)| json!({ "key": k, "value": v, "origin": o.to_string() })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&super::output::document("context-show", v)).unwrap_or_default());
    } else {
        match (&r.context, &r.context_origin) {
            (Some(n), Some(o)) => println!("context {n} ({o}), from {}", config_path().display()),
            _ => println!("no context ({} has none selected)", config_path().display()),
        }
        let rows: Vec<Vec<String>> = r.settings.iter().map(|(k, v, o)| vec![k.to_string(), v.clone(), o.to_string()]).collect();
        print!("{}", super::output::table(&["SETTING", "VALUE", "FROM"], &rows));
    }
    EXIT_OK
}

/// Set `current_context`, keeping the rest of the file as it is (toml_edit), atomically and with
/// a backup, and only if the file still holds what was read.
fn use_context(name: &str) -> u8 {
    let file = match ConfigFile::load() {
        Ok(Some(f)) => f,
        Ok(None) => return fail(format_args!("no context `{name}`: {} does not exist", config_path().display())),
        Err(e) => return fail(e),
    };
    if let Err(e) = file.get(name) {
        return fail(e);
    }
    if file.current.as_deref() == Some(name) {
        eprintln!("context {name} is already the current one");
        return EXIT_OK;
    }
    let mut doc: DocumentMut = match file.text.parse() {
        Ok(d) => d,
        Err(e) => return fail(format_args!("{}: {e}", file.path.display())),
    };
    match doc.get_mut("current_context").and_then(Item::as_value_mut) {
        Some(v) => {
            // Keep the comment and spacing around the old value.
            let decor = v.decor().clone();
            *v = Value::from(name);
            *v.decor_mut() = decor;
        }
        // toml_edit writes the root table's values before every table: it lands at the top.
        None => {
            doc.insert("current_context", toml_edit::value(name));
        }
    }
    let new = doc.to_string();
    // One backup, of the file as it was before the last `context use` (ours to replace).
    let _ = std::fs::remove_file(file.path.with_file_name("config.toml.bak-previous"));
    match crate::fsutil::replace_with_backup(&file.path, file.text.as_bytes(), new.as_bytes(), "previous") {
        Ok(_) => {
            eprintln!("current context: {name} ({})", file.path.display());
            EXIT_OK
        }
        Err(e) => fail(e),
    }
}
