//! Nothing to generate: embassy-stm32's `memory-x` feature provides the
//! linker's memory map; `.cargo/config.toml` passes link.x and defmt.x.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
