//! The control plane: a tokio runtime beside the DHCP/TFTP/SNMP worker threads, for the
//! services that are connection-oriented and slower-paced (HTTP profiles, the CWMP ACS). The hot
//! paths never wait on it.
//!
//! A service binds its listener synchronously through [`ControlPlane::block_on`] (so the ready
//! line is printed only once every port is open), then runs as a task started with
//! [`ControlPlane::spawn`], ending when [`ControlPlane::stopping`] completes. [`ControlPlane::stop`]
//! signals every task, waits a bounded time for each, and reports which failed.

use std::future::Future;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long `stop` waits for each task to finish its requests in flight.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct ControlPlane {
    rt: Runtime,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

// Until the first HTTP service is wired in, only the tests call the service-facing half.
#[allow(dead_code)]
impl ControlPlane {
    /// Starts the runtime with `threads` workers (at least one) named `provd-ctl`.
    pub fn start(threads: usize) -> std::io::Result<ControlPlane> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("provd-ctl")
            .enable_all()
            .build()?;
        let (stop, _) = watch::channel(false);
        Ok(ControlPlane {
            rt,
            stop,
            tasks: Vec::new(),
        })
    }

    /// Runs `fut` to completion on the runtime: for binding listeners at start-up.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    /// A future that completes once provd is stopping; hand one to each service.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    /// Runs a service until it returns; an error is logged at `stop` and fails the shutdown.
    pub fn spawn(
        &mut self,
        name: &'static str,
        fut: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.tasks.push((name, self.rt.spawn(fut)));
    }

    /// Whether a service has already ended (which, before shutdown, means it failed).
    pub fn any_finished(&self) -> bool {
        self.tasks.iter().any(|(_, t)| t.is_finished())
    }

    /// Signals every service to stop and waits for each; returns false if any failed.
    pub fn stop(self) -> bool {
        let _ = self.stop.send(true);
        let mut ok = true;
        for (name, task) in self.tasks {
            match self
                .rt
                .block_on(async { tokio::time::timeout(STOP_GRACE, task).await })
            {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    tracing::error!(service = name, error = format!("{e:#}"), "service failed");
                    ok = false;
                }
                Ok(Err(e)) => {
                    tracing::error!(service = name, error = %e, "service panicked");
                    ok = false;
                }
                Err(_) => tracing::warn!(service = name, "service did not stop in time"),
            }
        }
        self.rt.shutdown_timeout(STOP_GRACE);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_stop_when_asked_and_failures_are_reported() {
        let mut cp = ControlPlane::start(1).unwrap();
        let listener = cp
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let stopping = cp.stopping();
        cp.spawn("waits", async move {
            let _keep = listener;
            stopping.await;
            Ok(())
        });
        assert!(!cp.any_finished());
        assert!(cp.stop());

        let mut cp = ControlPlane::start(1).unwrap();
        cp.spawn("fails", async { anyhow::bail!("bind refused") });
        assert!(!cp.stop());
    }
}
