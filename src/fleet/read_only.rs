//! `--read-only` as a property of the fleet handle: a wrapper of any [`Fleet`] that passes reads
//! through and refuses every mutating method (backup, write, restore, restart, lock, unlock)
//! before anything is sent. A caller that forgets to check the flag still cannot mutate: the
//! handle it was given has no way to. (The console's dispatch-time refusal stays, for its
//! message; this is the guarantee.)

use std::time::Duration;

use async_trait::async_trait;

use super::{
    AgentRead, AgentRef, BackupRequest, Fleet, FleetError, Host, HostRead, LockKey, LockOutcome, RestoreRequest, VerifyReport,
    WriteReceipt, WriteRequest,
};

pub struct ReadOnly<F: ?Sized> {
    inner: Box<F>,
}

impl<F: Fleet + ?Sized> ReadOnly<F> {
    pub fn new(inner: Box<F>) -> ReadOnly<F> {
        ReadOnly { inner }
    }

    fn refuse<T>(&self, what: &str, agent: &AgentRef) -> Result<T, FleetError> {
        Err(FleetError::Refused(format!("--read-only: no {what} on {}", agent.id())))
    }
}

/// Wrap `f` when `read_only` is set.
pub fn guard(f: Box<dyn Fleet>, read_only: bool) -> Box<dyn Fleet> {
    if read_only {
        Box::new(ReadOnly::new(f))
    } else {
        f
    }
}

#[async_trait]
impl<F: Fleet + ?Sized> Fleet for ReadOnly<F> {
    fn describe(&self) -> String {
        format!("{} (read-only)", self.inner.describe())
    }

    async fn discover(&self) -> Result<Vec<Host>, FleetError> {
        self.inner.discover().await
    }

    async fn scan(&self, hosts: &[Host], tx: tokio::sync::mpsc::Sender<HostRead>) -> Result<(), FleetError> {
        self.inner.scan(hosts, tx).await
    }

    async fn read_agent(&self, agent: &AgentRef) -> Result<AgentRead, FleetError> {
        self.inner.read_agent(agent).await
    }

    async fn backup(&self, agent: &AgentRef, _req: &BackupRequest) -> Result<Option<WriteReceipt>, FleetError> {
        self.refuse("backup", agent)
    }

    async fn write_file(&self, agent: &AgentRef, _req: &WriteRequest) -> Result<WriteReceipt, FleetError> {
        self.refuse("write", agent)
    }

    async fn restore_file(&self, agent: &AgentRef, _req: &RestoreRequest) -> Result<WriteReceipt, FleetError> {
        self.refuse("restore", agent)
    }

    async fn restart(&self, agent: &AgentRef) -> Result<(), FleetError> {
        self.refuse("restart", agent)
    }

    async fn wait_stable(&self, agent: &AgentRef, timeout: Duration) -> Result<AgentRead, FleetError> {
        self.inner.wait_stable(agent, timeout).await
    }

    async fn verify(&self, agent: &AgentRef) -> Result<VerifyReport, FleetError> {
        self.inner.verify(agent).await
    }

    async fn lock(&self, agent: &AgentRef, _key: &LockKey) -> Result<LockOutcome, FleetError> {
        self.refuse("lock", agent)
    }

    async fn unlock(&self, agent: &AgentRef, _key: &LockKey) -> Result<(), FleetError> {
        self.refuse("unlock", agent)
    }
}
