//! Command-line tool: the demo and, later, the experiment suite.
fn main() {}
