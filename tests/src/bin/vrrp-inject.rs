//! Sends crafted VRRP adverts to 224.0.0.18 from a lab namespace (see `hav_tests::inject`).
//!
//! ```text
//! ip netns exec NS vrrp-inject --src 10.0.0.2 --vrid 80 --vip 10.0.0.250 [--version 3]
//!     [--priority 255] [--alternate 0] [--interval-cs 1] [--ttl 255]
//!     [--craft valid|bad-checksum|truncated|bad-version] [--count 1] [--rate 1000]
//! ```
//!
//! `--alternate P` makes every second message carry priority P (a 255/0 flood with
//! `--priority 255 --alternate 0`). Prints how many messages went out.

use std::net::Ipv4Addr;

use hav_tests::inject::{build, Advert, Craft, Injector};

fn usage() -> ! {
    eprintln!(
        "usage: vrrp-inject --src IP --vrid N --vip IP [--vip IP...] [--version 2|3] [--priority P] [--alternate P]\n\
         \x20      [--interval-cs N] [--ttl T] [--craft valid|bad-checksum|truncated|bad-version] [--count N] [--rate HZ]"
    );
    std::process::exit(2)
}

fn main() {
    let mut src = None;
    let mut adv = Advert { version: 3, vrid: 0, priority: 255, interval_cs: 100, vips: Vec::new() };
    let (mut alternate, mut ttl, mut craft, mut count, mut rate) = (None, 255u8, Craft::Valid, 1usize, 1000.0f64);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let val = it.next().unwrap_or_else(|| usage());
        let num = |v: &str| v.parse::<u64>().unwrap_or_else(|_| usage());
        match arg.as_str() {
            "--src" => src = Some(val.parse::<Ipv4Addr>().unwrap_or_else(|_| usage())),
            "--vrid" => adv.vrid = u8::try_from(num(&val)).unwrap_or_else(|_| usage()),
            "--vip" => adv.vips.push(val.parse().unwrap_or_else(|_| usage())),
            "--version" => adv.version = u8::try_from(num(&val)).unwrap_or_else(|_| usage()),
            "--priority" => adv.priority = u8::try_from(num(&val)).unwrap_or_else(|_| usage()),
            "--alternate" => alternate = Some(u8::try_from(num(&val)).unwrap_or_else(|_| usage())),
            "--interval-cs" => adv.interval_cs = u16::try_from(num(&val)).unwrap_or_else(|_| usage()),
            "--ttl" => ttl = u8::try_from(num(&val)).unwrap_or_else(|_| usage()),
            "--craft" => craft = Craft::parse(&val).unwrap_or_else(|| usage()),
            "--count" => count = usize::try_from(num(&val)).unwrap_or_else(|_| usage()),
            "--rate" => rate = val.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let Some(src) = src else { usage() };
    if adv.vrid == 0 || adv.vips.is_empty() || !matches!(adv.version, 2 | 3) {
        usage();
    }
    let inj = Injector::new(src, ttl).unwrap_or_else(|e| {
        eprintln!("vrrp-inject: raw socket: {e}");
        std::process::exit(1)
    });
    let first = build(&adv, craft, src);
    let second = alternate.map(|p| build(&Advert { priority: p, ..adv.clone() }, craft, src));
    match inj.paced(count, rate, |n| match (&second, n % 2) {
        (Some(s), 1) => s.clone(),
        _ => first.clone(),
    }) {
        Ok(n) => println!("{n} sent"),
        Err(e) => {
            eprintln!("vrrp-inject: send: {e}");
            std::process::exit(1)
        }
    }
}
