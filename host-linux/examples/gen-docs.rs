//! Writes hav-linux's man page and shell completions, generated from its clap definition,
//! into a directory: `hav-linux.8`, `hav-linux.bash`, `_hav-linux` (zsh), `hav-linux.fish`.
//!
//!     cargo run -p hav-linux --example gen-docs -- OUT_DIR
//!
//! scripts/build-deb packages them.

use std::path::PathBuf;

use clap::CommandFactory as _;
use clap_complete::Shell;
use hav_linux::cli::args::Args;

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(std::env::args_os().nth(1).unwrap_or_else(|| "packaging/generated".into()));
    std::fs::create_dir_all(&out)?;
    let cmd = Args::command();

    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).section("8").manual("System Manager's Manual").render(&mut page)?;
    std::fs::write(out.join("hav-linux.8"), page)?;

    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut c = cmd.clone();
        let path = clap_complete::generate_to(shell, &mut c, "hav-linux", &out)?;
        println!("{}", path.display());
    }
    println!("{}", out.join("hav-linux.8").display());
    Ok(())
}
