//! The diagnosis of one agent from what a backend read of it: below the scan, so that a backend
//! (the AWS backend's boot assertion) can judge a read without knowing the scan.

use super::AgentRead;
use crate::diagnose::{diagnose, AgentEvidence, Diagnosis, DiagnosisMemo};

impl AgentRead {
    /// Diagnose what a backend read: the diagnosis input built from the probe's report, the
    /// start command, the writable layer's changes and the boot log's warning.
    pub fn diagnose(&self) -> Diagnosis {
        self.diagnose_in(None)
    }

    /// [`Self::diagnose`], through `memo` when given (a scan's many agents: see
    /// [`DiagnosisMemo`]).
    pub fn diagnose_in(&self, memo: Option<&DiagnosisMemo>) -> Diagnosis {
        let r = self;
        let probe = match &r.probe {
            Ok(p) => p,
            Err(e) => return diagnose(&AgentEvidence { probe_error: Some(e), ..Default::default() }),
        };
        // A file the probe saw but whose content did not arrive cannot be judged.
        let layers = [&probe.system_config, &probe.requirements, &probe.managed_config, &probe.project_config];
        let files = [("config.toml", &probe.config), ("the boot emitter", &probe.emitter)]
            .into_iter()
            .chain(layers.iter().filter_map(|f| f.as_ref()).map(|f| (f.path.as_str(), f)));
        for (what, f) in files {
            if f.sha256.is_some() && f.redacted.is_none() {
                let e = format!("{what} exists ({}) but its content was not read", f.path);
                return diagnose(&AgentEvidence { probe_error: Some(&e), ..Default::default() });
            }
        }
        let ev = AgentEvidence {
            config_text: probe.config.redacted.as_deref(),
            probe: Some(probe),
            probe_error: None,
            start_command: &r.start_command,
            emitter_text: probe.emitter.redacted.as_deref(),
            image_emitter_text: None,
            layer_changes: &r.layer_changes,
            config_path: Some(probe.config.path.as_str()).filter(|p| !p.is_empty()),
            boot_warn: r.boot_warn.as_deref(),
            system_text: probe.system_config.as_ref().and_then(|f| f.redacted.as_deref()),
            requirements_text: probe.requirements.as_ref().and_then(|f| f.redacted.as_deref()),
            managed_text: probe.managed_config.as_ref().and_then(|f| f.redacted.as_deref()),
            project: probe.project_config.as_ref().and_then(|f| {
                f.redacted.as_deref().map(|t| (f.path.strip_suffix("/.codex/config.toml").unwrap_or(&f.path), t))
            }),
        };
        match memo {
            Some(m) => m.diagnose(&ev),
            None => diagnose(&ev),
        }
    }
}
