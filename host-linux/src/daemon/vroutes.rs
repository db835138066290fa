//! What the daemon installed of keepalived's routes, rules and static addresses, so that it
//! removes exactly that: virtual routes and rules of an instance while it holds its VIPs
//! (installed after them, removed before them), and `static_ipaddress` / `static_routes` /
//! `static_rules` for the daemon's life (installed at start, brought to the new config on a
//! reload, removed at stop), as keepalived does.
//!
//! A reload changes only what changed: an entry is identified by what the kernel gets, so an
//! unchanged one is neither removed nor added again. An entry the kernel refuses is logged with
//! its line and location and left out; the others go in.

use std::collections::HashMap;

use crate::config::iproute::{Route, Rule};
use crate::net::{AddrSpec, Netlink};

/// Routes and rules (and, for the static set, addresses) that hav put in the kernel.
#[derive(Debug, Default)]
pub struct Installed {
    addrs: Vec<(String, AddrSpec)>,
    routes: Vec<Route>,
    rules: Vec<Rule>,
}

/// Everything installed: the static set and each instance's virtual routes and rules.
#[derive(Debug, Default)]
pub struct Routing {
    statics: Installed,
    instances: HashMap<String, Installed>,
    /// Entries the kernel refused, counted for the log.
    pub errors: u64,
}

impl Installed {
    fn is_empty(&self) -> bool {
        self.addrs.is_empty() && self.routes.is_empty() && self.rules.is_empty()
    }
}

impl Routing {
    /// Brings the static set to `addrs` (device, address), `routes` and `rules`.
    pub fn sync_statics(&mut self, nl: &mut Netlink, addrs: &[(String, AddrSpec)], routes: &[Route], rules: &[Rule]) {
        let mut set = std::mem::take(&mut self.statics);
        self.sync(nl, "static", &mut set, addrs, routes, rules);
        self.statics = set;
    }

    /// Brings instance `name`'s virtual routes and rules to `routes` and `rules` (it holds its
    /// VIPs).
    pub fn sync_instance(&mut self, nl: &mut Netlink, name: &str, routes: &[Route], rules: &[Rule]) {
        let mut set = self.instances.remove(name).unwrap_or_default();
        self.sync(nl, name, &mut set, &[], routes, rules);
        if !set.is_empty() {
            self.instances.insert(name.to_owned(), set);
        }
    }

    /// Removes instance `name`'s virtual rules and routes (it leaves master).
    pub fn clear_instance(&mut self, nl: &mut Netlink, name: &str) {
        if let Some(mut set) = self.instances.remove(name) {
            self.sync(nl, name, &mut set, &[], &[], &[]);
        }
    }

    /// The instances that have virtual routes or rules installed.
    pub fn instances(&self) -> Vec<String> {
        self.instances.keys().cloned().collect()
    }

    /// Removes everything: every instance's entries, then the static set.
    pub fn clear_all(&mut self, nl: &mut Netlink) {
        for name in self.instances() {
            self.clear_instance(nl, &name);
        }
        self.sync_statics(nl, &[], &[], &[]);
    }

    /// Removes from `set` what is not wanted (rules, routes, addresses, in that order), then adds
    /// what is missing (addresses, routes, rules).
    fn sync(&mut self, nl: &mut Netlink, owner: &str, set: &mut Installed, addrs: &[(String, AddrSpec)], routes: &[Route], rules: &[Rule]) {
        let mut keep = Vec::new();
        for r in std::mem::take(&mut set.rules) {
            if rules.iter().any(|w| w.spec == r.spec) {
                keep.push(r);
            } else if let Err(e) = nl.del_rule(&r.spec) {
                self.errors += 1;
                tracing::error!(owner, rule = %r.text, at = %r.location, error = %e, "rule not removed");
            } else {
                tracing::info!(owner, rule = %r.text, "rule removed");
            }
        }
        set.rules = keep;
        let mut keep = Vec::new();
        for r in std::mem::take(&mut set.routes) {
            if routes.iter().any(|w| w.spec == r.spec) {
                keep.push(r);
            } else if let Err(e) = nl.del_vroute(&r.spec) {
                self.errors += 1;
                tracing::error!(owner, route = %r.text, at = %r.location, error = %e, "route not removed");
            } else {
                tracing::info!(owner, route = %r.text, "route removed");
            }
        }
        set.routes = keep;
        let mut keep = Vec::new();
        for (dev, a) in std::mem::take(&mut set.addrs) {
            if addrs.iter().any(|(d, w)| *d == dev && *w == a) {
                keep.push((dev, a));
                continue;
            }
            // A device that is gone took its addresses with it.
            let Ok(link) = nl.link_by_name(&dev) else { continue };
            match nl.del_address(link.index, a.addr, a.prefix) {
                Ok(()) => tracing::info!(owner, dev, address = %a.addr, "static address removed"),
                Err(e) => {
                    self.errors += 1;
                    tracing::error!(owner, dev, address = %a.addr, error = %e, "static address not removed");
                }
            }
        }
        set.addrs = keep;

        for (dev, a) in addrs {
            if set.addrs.iter().any(|(d, w)| d == dev && w == a) {
                continue;
            }
            let added = nl.link_by_name(dev).and_then(|l| nl.add_address(l.index, a));
            match added {
                Ok(()) => {
                    tracing::info!(owner, dev, address = %a.addr, "static address added");
                    set.addrs.push((dev.clone(), a.clone()));
                }
                Err(e) => {
                    self.errors += 1;
                    tracing::error!(owner, dev, address = %a.addr, error = %e, "static address not added");
                }
            }
        }
        for r in routes {
            if set.routes.iter().any(|w| w.spec == r.spec) {
                continue;
            }
            match nl.add_vroute(&r.spec) {
                Ok(()) => {
                    tracing::info!(owner, route = %r.text, "route added");
                    set.routes.push(r.clone());
                }
                Err(e) => {
                    self.errors += 1;
                    tracing::error!(owner, route = %r.text, at = %r.location, error = %e, "route not added");
                }
            }
        }
        for r in rules {
            if set.rules.iter().any(|w| w.spec == r.spec) {
                continue;
            }
            match nl.add_rule(&r.spec) {
                Ok(()) => {
                    tracing::info!(owner, rule = %r.text, "rule added");
                    set.rules.push(r.clone());
                }
                Err(e) => {
                    self.errors += 1;
                    tracing::error!(owner, rule = %r.text, at = %r.location, error = %e, "rule not added");
                }
            }
        }
    }
}
