//! Criterion benches of the JIT (filled in below).
fn main() {}
