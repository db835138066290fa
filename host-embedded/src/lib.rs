//! hav-embedded: VRRP on smoltcp under embassy.
#![no_std]
