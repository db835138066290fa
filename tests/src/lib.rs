//! hav-tests: the deterministic simulator and end-to-end harnesses.

pub mod capture;
pub mod corpus;
pub mod inject;
pub mod kadump;
pub mod netns;
pub mod peers;
pub mod sim;
