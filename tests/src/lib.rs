//! hav-tests: the deterministic simulator and end-to-end harnesses.
