//! provd-engine
