//! Criterion benches for provd hot paths live in benches/benches/.
