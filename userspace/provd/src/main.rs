//! provd
fn main() {}
