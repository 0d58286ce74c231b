//! `-n cidr:gateway` (n2n 3.1.1, spec §1.6): kernel routes through the overlay, added once the
//! TAP is up and removed on exit. `-n 0.0.0.0/0:gw` routes everything through the overlay: the
//! supernode keeps its way out by a /32 route via the old default gateway, and 0.0.0.0/1 plus
//! 128.0.0.0/1 go via `gw`. The routes go through iproute2's `ip` (as the lab and the units
//! assume it is there), never through a shell.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;

use tracing::{info, warn};

use crate::cli::OverlayRoute;

/// One route we added, to remove on exit.
#[derive(Debug, Clone)]
pub struct AddedRoute {
    args: Vec<String>,
}

/// Adds the routes; a route the kernel refuses is logged and skipped.
pub fn add(routes: &[OverlayRoute], device: &str, supernode: SocketAddr) -> Vec<AddedRoute> {
    let mut added = Vec::new();
    for r in routes {
        if r.prefix == 0 {
            let Some(old_gw) = default_gateway() else {
                warn!("-n 0.0.0.0/0: no default gateway to keep the supernode reachable");
                continue;
            };
            let sn = match supernode {
                SocketAddr::V4(a) => *a.ip(),
                SocketAddr::V6(_) => continue,
            };
            for args in [
                route_args(&format!("{sn}/32"), old_gw, None),
                route_args("0.0.0.0/1", r.gateway, Some(device)),
                route_args("128.0.0.0/1", r.gateway, Some(device)),
            ] {
                push_if_added(&mut added, args);
            }
        } else {
            let net = format!("{}/{}", r.net, r.prefix);
            push_if_added(&mut added, route_args(&net, r.gateway, Some(device)));
        }
    }
    added
}

/// Removes what [`add`] added (routes through the TAP would also go with it).
pub fn remove(added: &[AddedRoute]) {
    for r in added.iter().rev() {
        let mut args = vec!["route".to_string(), "del".to_string()];
        args.extend(r.args.iter().cloned());
        if !run(&args) {
            warn!(route = %r.args.join(" "), "could not remove the route");
        }
    }
}

fn route_args(net: &str, gw: Ipv4Addr, device: Option<&str>) -> Vec<String> {
    let mut v = vec![net.to_string(), "via".into(), gw.to_string()];
    if let Some(d) = device {
        v.extend(["dev".to_string(), d.to_string()]);
    }
    v
}

fn push_if_added(added: &mut Vec<AddedRoute>, args: Vec<String>) {
    let mut full = vec!["route".to_string(), "add".to_string()];
    full.extend(args.iter().cloned());
    if run(&full) {
        info!(route = %args.join(" "), "route added");
        added.push(AddedRoute { args });
    } else {
        warn!(route = %args.join(" "), "could not add the route (-n)");
    }
}

fn run(args: &[String]) -> bool {
    Command::new("ip")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The default gateway from /proc/net/route (as n2n reads it).
fn default_gateway() -> Option<Ipv4Addr> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&"00000000") && f.get(7) == Some(&"00000000"))
            .then(|| u32::from_str_radix(f.get(2)?, 16).ok())
            .flatten()
            // The file holds the address in host (little-endian) order.
            .map(|g| Ipv4Addr::from(g.swap_bytes()))
    })
}
