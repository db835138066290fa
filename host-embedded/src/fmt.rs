//! Logging macros that forward to `defmt` or `log`, or compile to nothing.
//!
//! Arguments are plain integers, `&str` and types that are both
//! `defmt::Format` and `Debug` (hav-core's enums), so one format string
//! serves both backends.
#![allow(unused_macros)]

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("hav-embedded: enable at most one of the `defmt` and `log` features");

macro_rules! define_log {
    ($d:tt $name:ident) => {
        macro_rules! $name {
            ($d s:literal $d(, $d x:expr)* $d(,)?) => {{
                #[cfg(feature = "log")]
                ::log::$name!($d s $d(, $d x)*);
                #[cfg(feature = "defmt")]
                ::defmt::$name!($d s $d(, $d x)*);
                #[cfg(not(any(feature = "log", feature = "defmt")))]
                let _ = ($d( & $d x ),*);
            }};
        }
    };
}

define_log!($ trace);
define_log!($ debug);
define_log!($ info);
define_log!($ warn);
define_log!($ error);

