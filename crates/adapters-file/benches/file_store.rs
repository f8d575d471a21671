//! File adapter benchmarks (placeholder until the suite lands).

fn main() {}
