//! hav-policy: the guest SDK for hav WASM policies.
#![no_std]
