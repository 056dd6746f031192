//! provd-acs: the state of the TR-069 ACS, sans-IO.
//!
//! * [`store`]: device records keyed by DeviceId, built for millions (interned strings,
//!   one optional box for what only some devices need).
//! * [`acs`]: what sessions do to them — Inform filing, the task queues, declarative presets,
//!   firmware campaigns, value-change and alarm events — as the [`provd_cwmp::Driver`] of a
//!   session.
//! * [`auth`]: Basic and Digest (RFC 7616: SHA-256, MD5; nonce expiry, nonce-count replay
//!   protection) for CPEs, and the client half of Digest for connection requests.
//! * [`cr`]: UDP connection requests (HMAC-SHA1 signed), STUN Binding (RFC 5389 / TR-111),
//!   the connection-request limiter.
//! * [`throttle`]: failed-authentication backoff per source address and per username.
//! * [`persist`]: the device index, queued tasks and campaign marks as a JSON-lines snapshot;
//!   [`journal`]: the API's tasks, synced before they are acknowledged, between snapshots.
//!
//! Sockets, HTTP and timers are the shell's (`provd-acsd`); here the time is a parameter.

pub mod acs;
pub mod auth;
pub mod cr;
pub mod intern;
pub mod journal;
pub mod persist;
pub mod store;
pub mod throttle;

pub use acs::{Acs, AcsDriver, Filter, QueueError, SessionDevice, TaskInfo, TaskState};
pub use store::{DeviceKey, Store};
