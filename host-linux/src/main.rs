//! The hav-linux daemon and CLI.
fn main() {}
