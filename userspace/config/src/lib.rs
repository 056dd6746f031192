//! provd-config
