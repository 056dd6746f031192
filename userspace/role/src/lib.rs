//! provd-role: what every role of `provd serve` has in common, so that `serve` reads as
//! "load config, restore state, build the roles the config names, run, stop".
//!
//! A role (DHCP workers, TFTP, MTA provisioning, syslog, time, HTTP profiles, the ACS) is built
//! by its own shell crate from its validated settings and the shared state it reads, binds its
//! sockets before it returns (so a port in use refuses the start), runs on the runtime it needs
//! (a [`WorkerSet`] of threads, or tasks on the tokio [`ControlPlane`]), and is then driven only
//! through [`Role`]: its counters and health the same way for every role, whether it ended on
//! its own, and a stop with bounded grace.
//!
//! Also here, because every shell needs them once: the wall clock ([`clock`]), the
//! "0 workers means one per core" rule ([`workers_for`]) and the heartbeats the service
//! manager's watchdog is fed from ([`liveness`]).

pub mod clock;
mod control_plane;
pub mod liveness;
pub mod metrics;
pub mod query;
mod role;
mod workers;

pub use control_plane::{ControlPlane, Task};
pub use liveness::{Liveness, beat};
pub use query::QuerySocket;
pub use role::{Counters, Health, Role, RoleSet};
pub use workers::{WorkerSet, workers_for};
