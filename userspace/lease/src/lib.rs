//! provd-lease
