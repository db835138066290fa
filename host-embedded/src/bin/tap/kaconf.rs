//! `hav-embedded-tap config`: the `vrrp_instance` blocks of a keepalived.conf
//! as `encode` flags, so that a firmware's stored config comes from the same
//! file as its keepalived or hav-linux peers.
//!
//! Read: `global_defs { vrrp_version }`, `vrrp_sync_group { group { ... } }`,
//! and in `vrrp_instance`: `virtual_router_id`, `priority`, `advert_int`,
//! `version`, `nopreempt`, `preempt_delay`, `accept`, `native_ipv6`,
//! `authentication { auth_type PASS auth_pass }`, `virtual_ipaddress`,
//! `unicast_peer`, `garp_master_repeat`, `garp_master_delay`. Keywords that
//! concern the host (`interface`, `state`, `notify*`, `track_*`...) are
//! listed as ignored. `include` is not followed.

use std::net::IpAddr;

/// A keyword line and, when a `{ }` block follows it, the lines inside.
#[derive(Debug)]
struct Item {
    words: Vec<String>,
    block: Vec<Item>,
}

// Lines of words (comments cut at `#` or `!`), `{` and `}` as lines of their own.
fn lines(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', '!']).next().unwrap_or("");
        let mut words = Vec::new();
        for w in line.replace('{', " { ").replace('}', " } ").split_whitespace() {
            if w == "{" || w == "}" {
                if !words.is_empty() {
                    out.push(std::mem::take(&mut words));
                }
                out.push(vec![w.to_string()]);
            } else {
                words.push(w.to_string());
            }
        }
        if !words.is_empty() {
            out.push(words);
        }
    }
    out
}

fn parse(text: &str) -> Result<Vec<Item>, String> {
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    for words in lines(text) {
        match words[0].as_str() {
            "{" => {
                let opened = stack.last().and_then(|l| l.last()).is_some();
                if !opened {
                    return Err("'{' with no keyword before it".into());
                }
                stack.push(Vec::new());
            }
            "}" => {
                let block = stack.pop().filter(|_| !stack.is_empty()).ok_or("unbalanced '}'")?;
                let parent = stack.last_mut().and_then(|l| l.last_mut()).ok_or("unbalanced '}'")?;
                parent.block = block;
            }
            _ => stack.last_mut().ok_or("unbalanced '}'")?.push(Item { words, block: Vec::new() }),
        }
    }
    if stack.len() != 1 {
        return Err("unclosed '{'".into());
    }
    Ok(stack.pop().unwrap_or_default())
}

fn arg<'a>(item: &'a Item, what: &str) -> Result<&'a str, String> {
    item.words.get(1).map(String::as_str).ok_or(format!("{what}: {} needs a value", item.words[0]))
}

/// The result: `encode` flags for the instances, and the keywords ignored.
#[derive(Debug)]
pub(crate) struct Translated {
    pub(crate) flags: Vec<String>,
    pub(crate) ignored: Vec<String>,
}

/// Translates the `vrrp_instance` blocks of `text` (all, or those named in
/// `only`) into `encode`'s instance and `--sync-group` flags.
pub(crate) fn translate(text: &str, only: &[String]) -> Result<Translated, String> {
    let items = parse(text)?;
    let mut version = None;
    let mut flags = Vec::new();
    let mut ignored = Vec::new();
    let mut vrids: Vec<(String, u8)> = Vec::new();
    for item in items.iter().filter(|i| i.words[0] == "global_defs") {
        for g in &item.block {
            if g.words[0] == "vrrp_version" {
                version = Some(arg(g, "global_defs")?.to_string());
            }
        }
    }
    for item in items.iter().filter(|i| i.words[0] == "vrrp_instance") {
        let name = item.words.get(1).ok_or("vrrp_instance needs a name")?.clone();
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let ctx = format!("vrrp_instance {name}");
        let vrid = item
            .block
            .iter()
            .find(|k| k.words[0] == "virtual_router_id")
            .ok_or(format!("{ctx}: no virtual_router_id"))?;
        let vrid = arg(vrid, &ctx)?;
        vrids.push((name.clone(), vrid.parse().map_err(|_| format!("{ctx}: bad virtual_router_id {vrid}"))?));
        let mut inst = vec!["--vrid".to_string(), vrid.to_string()];
        let mut ipv6 = false;
        let mut has_version = false;
        let mut push = |flag: &str, value: &str| {
            inst.push(flag.to_string());
            if !value.is_empty() {
                inst.push(value.to_string());
            }
        };
        for k in &item.block {
            let key = k.words[0].as_str();
            match key {
                "virtual_router_id" => {}
                "priority" => push("--priority", arg(k, &ctx)?),
                "advert_int" => push("--advert-int", arg(k, &ctx)?),
                "version" => {
                    has_version = true;
                    push("--version", arg(k, &ctx)?);
                }
                "nopreempt" => push("--nopreempt", ""),
                "preempt_delay" => push("--preempt-delay", arg(k, &ctx)?),
                "accept" => push("--accept", ""),
                "native_ipv6" => ipv6 = true,
                "garp_master_repeat" => push("--garp-repeat", arg(k, &ctx)?),
                "garp_master_delay" => push("--garp-delay", arg(k, &ctx)?),
                "authentication" => {
                    let get = |w: &str| k.block.iter().find(|a| a.words[0] == w).and_then(|a| a.words.get(1));
                    match get("auth_type").map(String::as_str) {
                        Some("PASS") | None => {}
                        Some(other) => return Err(format!("{ctx}: auth_type {other} is not supported by the firmware (PASS only; hav-linux runs AH)")),
                    }
                    let pw = get("auth_pass").ok_or(format!("{ctx}: authentication without auth_pass"))?;
                    push("--auth-pass", pw);
                }
                "virtual_ipaddress" | "unicast_peer" => {
                    for a in &k.block {
                        let addr = a.words[0].split('/').next().unwrap_or("");
                        let ip: IpAddr = addr.parse().map_err(|_| format!("{ctx}: {key}: bad address {}", a.words[0]))?;
                        ipv6 |= ip.is_ipv6();
                        push(if key == "unicast_peer" { "--unicast-peer" } else { "--vip" }, addr);
                    }
                }
                other => ignored.push(format!("{ctx}: {other}")),
            }
        }
        if ipv6 {
            inst.push("--ipv6".into());
        }
        if let (false, Some(v)) = (has_version || ipv6, &version) {
            inst.extend(["--version".to_string(), v.clone()]);
        }
        flags.extend(inst);
    }
    if vrids.is_empty() {
        return Err("no vrrp_instance found".into());
    }
    for item in items.iter().filter(|i| i.words[0] == "vrrp_sync_group") {
        let Some(group) = item.block.iter().find(|g| g.words[0] == "group") else { continue };
        let members: Vec<String> = group
            .block
            .iter()
            .flat_map(|l| l.words.iter())
            .filter_map(|n| vrids.iter().find(|(name, _)| name == n).map(|(_, v)| v.to_string()))
            .collect();
        if members.len() > 1 {
            flags.extend(["--sync-group".to_string(), members.join(",")]);
        }
    }
    Ok(Translated { flags, ignored })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_translate() {
        let conf = "global_defs {\n  vrrp_version 3\n}\n\
            vrrp_sync_group G { group {\n VI_1\n VI_6\n } }\n\
            vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0 # the LAN\n  virtual_router_id 51\n\
            \x20 priority 150\n  advert_int 0.5\n  nopreempt\n  virtual_ipaddress {\n    10.0.0.50/24 dev eth0\n  }\n\
            \x20 unicast_peer {\n    10.0.0.1\n  }\n}\n\
            vrrp_instance VI_6 {\n  virtual_router_id 52\n  virtual_ipaddress {\n    fd00::50/64\n  }\n}\n";
        let t = translate(conf, &[]).unwrap();
        let want = "--vrid 51 --priority 150 --advert-int 0.5 --nopreempt --vip 10.0.0.50 \
                    --unicast-peer 10.0.0.1 --version 3 --vrid 52 --vip fd00::50 --ipv6 --sync-group 51,52";
        assert_eq!(t.flags.join(" "), want);
        assert_eq!(t.ignored, ["vrrp_instance VI_1: state", "vrrp_instance VI_1: interface"]);
        let only = translate(conf, &["VI_6".to_string()]).unwrap();
        assert_eq!(only.flags.join(" "), "--vrid 52 --vip fd00::50 --ipv6");
        assert!(translate("vrrp_instance X {\n priority 1\n}\n", &[]).unwrap_err().contains("no virtual_router_id"));
        assert!(translate("vrrp_instance X {\n", &[]).unwrap_err().contains("unclosed"));
        let ah = "vrrp_instance X {\n virtual_router_id 1\n authentication {\n auth_type AH\n auth_pass x\n }\n}\n";
        assert!(translate(ah, &[]).unwrap_err().contains("PASS only"));
    }
}
