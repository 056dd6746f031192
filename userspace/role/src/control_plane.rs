//! The control plane: a tokio runtime beside the DHCP/TFTP/SNMP worker threads, for the roles
//! that are connection-oriented and slower-paced (HTTP profiles, the CWMP ACS and its API). The
//! hot paths never wait on it.
//!
//! A role binds its listeners synchronously through [`ControlPlane::block_on`] (so the ready
//! line is printed only once every port is open), then runs its tasks, started with
//! [`ControlPlane::spawn`], until [`ControlPlane::stopping`] completes. Each [`Task`] belongs to
//! the role that spawned it, which joins it with bounded grace when it stops.

use std::future::Future;
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::liveness::Liveness;

/// The tokio runtime every async role shares.
#[derive(Debug)]
pub struct ControlPlane {
    rt: Runtime,
    stop: watch::Sender<bool>,
}

/// One task of a role on the control plane.
#[derive(Debug)]
pub struct Task {
    name: &'static str,
    handle: JoinHandle<anyhow::Result<()>>,
    rt: Handle,
}

impl ControlPlane {
    /// Starts the runtime with `threads` workers (at least one) named `provd-ctl`.
    pub fn start(threads: usize) -> std::io::Result<ControlPlane> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("provd-ctl")
            .enable_all()
            .build()?;
        let (stop, _) = watch::channel(false);
        // The runtime's heartbeat: a task that beats only while the runtime runs its tasks (every
        // worker blocked, or the timer driver stuck, silences it).
        let hb = Liveness::global().register("provd-ctl", std::time::Instant::now());
        rt.spawn(async move {
            loop {
                hb.beat();
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Ok(ControlPlane { rt, stop })
    }

    /// Runs `fut` to completion on the runtime: for binding listeners at start-up.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    /// A handle on the runtime, for roles that spawn from their own tasks.
    pub fn handle(&self) -> &Handle {
        self.rt.handle()
    }

    /// A future that completes once provd is stopping; hand one to each task.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    /// Runs a task until it returns; the role that spawned it keeps the [`Task`].
    pub fn spawn(
        &self,
        name: &'static str,
        fut: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> Task {
        Task {
            name,
            handle: self.rt.spawn(fut),
            rt: self.rt.handle().clone(),
        }
    }

    /// Tells every task to stop (their [`stopping`](Self::stopping) futures complete).
    pub fn signal_stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Signals the stop, then ends the runtime, giving tasks not yet joined `grace`.
    pub fn shutdown(self, grace: Duration) {
        self.signal_stop();
        self.rt.shutdown_timeout(grace);
    }
}

impl Task {
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the task has ended (before shutdown that means it failed).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits at most `grace` for the task to end; its error, a panic or the timeout is an error.
    /// Call from outside the runtime (the main thread), after [`ControlPlane::signal_stop`].
    pub fn join(self, grace: Duration) -> anyhow::Result<()> {
        let name = self.name;
        self.join_or_timeout(grace)
            .unwrap_or_else(|| Err(anyhow::anyhow!("{name} did not stop within {grace:?}")))
    }

    /// [`join`](Self::join) for a listener that drains its open connections when it stops: one
    /// still draining after `grace` is not a failure. It is logged and left to the runtime's
    /// shutdown, which cuts the connections left. Its error or panic is still an error.
    pub fn join_draining(self, grace: Duration) -> anyhow::Result<()> {
        let name = self.name;
        self.join_or_timeout(grace).unwrap_or_else(|| {
            tracing::warn!(
                task = name,
                ?grace,
                "still draining; left to the runtime's shutdown"
            );
            Ok(())
        })
    }

    /// The task's result, or None if it did not end within `grace`.
    fn join_or_timeout(self, grace: Duration) -> Option<anyhow::Result<()>> {
        let name = self.name;
        match self
            .rt
            .block_on(async { tokio::time::timeout(grace, self.handle).await })
        {
            Ok(Ok(r)) => Some(r.map_err(|e| e.context(format!("{name} failed")))),
            Ok(Err(e)) => Some(Err(anyhow::anyhow!("{name} panicked: {e}"))),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_stop_when_asked_and_failures_are_reported() {
        let cp = ControlPlane::start(1).unwrap();
        let listener = cp
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let stopping = cp.stopping();
        let waits = cp.spawn("waits", async move {
            let _keep = listener;
            stopping.await;
            Ok(())
        });
        let fails = cp.spawn("fails", async { anyhow::bail!("bind refused") });
        let stuck = cp.spawn("stuck", async {
            std::future::pending::<()>().await;
            Ok(())
        });
        assert!(!waits.is_finished());
        cp.signal_stop();
        waits.join(Duration::from_secs(5)).unwrap();
        let e = fails.join(Duration::from_secs(5)).unwrap_err();
        assert!(format!("{e:#}").contains("bind refused"), "{e:#}");
        let e = stuck.join(Duration::from_millis(20)).unwrap_err();
        assert!(e.to_string().contains("did not stop"), "{e}");
        cp.shutdown(Duration::from_secs(1));
    }

    #[test]
    fn a_listener_still_draining_is_not_a_failure_but_its_error_is() {
        let cp = ControlPlane::start(1).unwrap();
        let draining = cp.spawn("draining", async {
            std::future::pending::<()>().await;
            Ok(())
        });
        let fails = cp.spawn("fails", async { anyhow::bail!("accept failed") });
        cp.signal_stop();
        draining.join_draining(Duration::from_millis(20)).unwrap();
        let e = fails.join_draining(Duration::from_secs(5)).unwrap_err();
        assert!(format!("{e:#}").contains("accept failed"), "{e:#}");
        cp.shutdown(Duration::from_secs(1));
    }
}
