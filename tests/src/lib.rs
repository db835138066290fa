//! hav-tests: the deterministic simulator and end-to-end harnesses.

pub mod netns;
pub mod peers;
pub mod sim;
