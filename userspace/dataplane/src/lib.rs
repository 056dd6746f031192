//! provd-dataplane
