//! provd-loadgen
fn main() {}
