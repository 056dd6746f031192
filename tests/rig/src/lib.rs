//! provd-rig
