//! `--agent-filter`: which containers are codex agents. Forms: `label=K=V`, `name=GLOB`,
//! `image=SUBSTR`; default: the image reference contains `codex`.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentFilter {
    Label { key: String, value: String },
    Name(String),
    Image(String),
}

impl Default for AgentFilter {
    fn default() -> Self {
        AgentFilter::Image("codex".into())
    }
}

impl std::str::FromStr for AgentFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}`: expected label=KEY=VALUE, name=GLOB or image=SUBSTRING");
        let (kind, rest) = s.split_once('=').ok_or_else(bad)?;
        match kind {
            "label" => {
                let (key, value) = rest.split_once('=').ok_or_else(bad)?;
                if key.is_empty() {
                    return Err(bad());
                }
                Ok(AgentFilter::Label { key: key.into(), value: value.into() })
            }
            "name" if !rest.is_empty() => Ok(AgentFilter::Name(rest.into())),
            "image" if !rest.is_empty() => Ok(AgentFilter::Image(rest.into())),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for AgentFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentFilter::Label { key, value } => write!(f, "label={key}={value}"),
            AgentFilter::Name(g) => write!(f, "name={g}"),
            AgentFilter::Image(s) => write!(f, "image={s}"),
        }
    }
}

impl AgentFilter {
    /// Does a container (name without the leading `/`, image reference, labels) match?
    pub fn matches(&self, name: &str, image: &str, labels: &BTreeMap<String, String>) -> bool {
        match self {
            AgentFilter::Label { key, value } => labels.get(key).is_some_and(|v| v == value),
            AgentFilter::Name(g) => glob(g, name.trim_start_matches('/')),
            AgentFilter::Image(s) => image.contains(s.as_str()),
        }
    }
}

/// `*` and `?` globbing (no character classes), whole-string.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let l: BTreeMap<String, String> = [("molecule.platform.managed".to_string(), "true".to_string())].into();
        assert!("label=molecule.platform.managed=true".parse::<AgentFilter>().unwrap().matches("x", "y", &l));
        assert!("name=ws-*".parse::<AgentFilter>().unwrap().matches("/ws-7d88be80", "", &l));
        assert!(!"name=ws-?".parse::<AgentFilter>().unwrap().matches("ws-12", "", &l));
        assert!(AgentFilter::default().matches("a", "reg/workspace-template-codex:sha-1", &l));
        assert!("nope".parse::<AgentFilter>().is_err());
        assert!("label=".parse::<AgentFilter>().is_err());
    }
}
