//! provd-common
