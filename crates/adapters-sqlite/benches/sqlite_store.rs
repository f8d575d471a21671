//! SQLite adapter benchmarks (being written).

fn main() {}
