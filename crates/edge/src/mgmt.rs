//! The edge's management interface on 127.0.0.1:5644 (spec §8), as n2n's edge_management.c:
//! the text commands (help, stop, ±verb, the status table) and the JSON API (`edges`,
//! `supernodes`, `info`, `timestamps`, `packetstats`, `verbose`, `stop`, subscriptions, …),
//! field for field and datagram for datagram.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use n2n_daemon::mgmt::{self, Kind, Method, Request, Rows, ago, js, secs};
use n2n_proto::{IpSubnet, Mac};

use crate::events::{Subscriptions, TOPICS};
use crate::machine::{Details, Edge, Known, KnownSupernode, Pending, Refusal, Selection};
use crate::tunnel::{Counters, DropReason, Tunnel};

/// What the management API may change.
#[derive(Debug)]
pub struct Control {
    pub password_hash: u64,
    /// n2n's trace level: 0 error … 4 debug (2 normal).
    pub verbosity: u8,
    pub keep_running: bool,
    pub subs: Subscriptions,
    /// What `info` shows as `sockaddr`: the preferred local address (`-e`, else 0.0.0.0)
    /// with our UDP port, as n2n.
    pub local: SocketAddr,
}

/// n2n's mgmt_handlers[] in its order (the `help` rows follow it), then n2n-rs's `drops`.
pub const METHODS: [Method; 13] = [
    ("reload_communities", true, "Reserved for supernode"),
    ("stop", true, "Gracefully exit edge"),
    ("verbose", true, "Manage verbosity level"),
    ("communities", false, "Show current community"),
    ("edges", false, "List current edges/peers"),
    ("supernodes", false, "List current supernodes"),
    ("info", false, "Provide basic edge information"),
    ("timestamps", false, "Event timestamps"),
    ("packetstats", false, "traffic counters"),
    ("post.test", false, "send a test event"),
    ("help", true, "Show JSON commands"),
    ("help.events", false, "Show available Subscribe topics"),
    (
        "drops",
        false,
        "Dropped datagrams and refused messages by reason",
    ),
];

/// The reply to `help` (and `?`).
pub const HELP: &str = "Help for edge management console:\n\
\tstop    | Gracefully exit edge\n\
\thelp    | This help message\n\
\t+verb   | Increase verbosity of logging\n\
\t-verb   | Decrease verbosity of logging\n\
\tr ...   | start query with JSON reply\n\
\tw ...   | start update with JSON reply\n\
\ts ...   | subscribe to event channel JSON reply\n\
\t<enter> | Display statistics\n\n";

const RULE_DOUBLE: &str = "=============================================================================================================\n";
const RULE_SINGLE: &str = "-------------------------------------------------------------------------------------------------------------\n";

/// Handles one request datagram from `from`; returns the reply datagrams (messages for other
/// subscribers go to `ctl.subs.outbox`).
pub fn handle(
    m: &Edge,
    tunnel: &Tunnel,
    ctl: &mut Control,
    now_us: u64,
    request: &[u8],
    from: SocketAddr,
) -> Vec<String> {
    if request.starts_with(b"help") || request.starts_with(b"?") {
        return vec![HELP.into()];
    }
    if request.starts_with(b"stop") {
        ctl.keep_running = false;
        return Vec::new();
    }
    if request.starts_with(b"+verb") {
        ctl.verbosity = ctl.verbosity.saturating_add(1);
        return vec![format!("> +OK traceLevel={}\n", ctl.verbosity)];
    }
    if request.starts_with(b"-verb") {
        if ctl.verbosity == 0 {
            return vec!["> -NOK traceLevel=0\n".into()];
        }
        ctl.verbosity -= 1;
        return vec![format!("> -OK traceLevel={}\n", ctl.verbosity)];
    }
    if request.len() >= 2 && request[0].is_ascii_lowercase() && request[1] == b' ' {
        return json_request(m, tunnel, ctl, request, from);
    }
    status_table(m, tunnel, m.wall_time(now_us))
}

/// A machine time (monotonic) as the wall-clock time n2n shows; 0 stays "never".
fn wall(m: &Edge, mono_us: u64) -> u64 {
    if mono_us == 0 {
        0
    } else {
        m.wall_time(mono_us)
    }
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// Packets sent through the supernode, as n2n's `tx_sup`: broadcasts count here too.
fn super_tx(c: &Counters) -> u64 {
    load(&c.super_tx) + load(&c.super_broadcast_tx)
}

fn mac_text(mac: &Mac) -> String {
    if mac.is_null() {
        String::new()
    } else {
        mac.to_string()
    }
}

/// `a.b.c.d/n`, or empty for address 0 (n2n's ip_subnet_to_str unless net_addr is 0).
fn subnet_text(s: Option<IpSubnet>) -> String {
    match s {
        Some(s) if !s.addr.is_unspecified() => s.to_string(),
        _ => String::new(),
    }
}

/// A socket as n2n's sock_to_cstr; an unknown one is all zeros.
fn sock_text(s: Option<SocketAddr>) -> String {
    s.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
        .to_string()
}

/// `%9u` of `now - then` (n2n's time_buf), or empty when `then` is 0.
fn seen_text(now_us: u64, then_us: u64) -> String {
    if then_us == 0 {
        String::new()
    } else {
        format!("{:9}", ago(now_us, then_us) as u32)
    }
}

/// Peers in listing order.
type Listed<'a, T> = Vec<(&'a Mac, &'a T)>;

/// The peers in MAC order: pending, then (`-A6`/`-A7`) those whose path is being verified,
/// both still reached through the supernode, then the known ones.
fn peers(m: &Edge) -> (Listed<'_, Pending>, Listed<'_, Known>, Listed<'_, Known>) {
    let mut pending: Vec<_> = m.pending().collect();
    pending.sort_by_key(|(mac, _)| **mac);
    let mut verifying: Vec<_> = m.verifying().collect();
    verifying.sort_by_key(|(mac, _)| **mac);
    let mut known: Vec<_> = m.known().collect();
    known.sort_by_key(|(mac, _)| **mac);
    (pending, verifying, known)
}

/// The plain-text status: one datagram per peer or supernode row, the headings riding with
/// the row after them, as n2n sends it.
fn status_table(m: &Edge, tunnel: &Tunnel, now_us: u64) -> Vec<String> {
    let c = tunnel.counters();
    let (pending, verifying, known) = peers(m);
    let mut out = Vec::new();
    let community = if tunnel.config().header_key.is_some() {
        "-- header encrypted --".to_string()
    } else {
        m.community().text().into_owned()
    };
    let mut buf = format!(
        "COMMUNITY '{community}'\n\n ### | TAP             | MAC               | EDGE                  | HINT            | LAST SEEN |     UPTIME\n{RULE_DOUBLE}SUPERNODE FORWARD\n"
    );
    let peer_row = |n: usize, mac: &Mac, d: &Details, sock: Option<SocketAddr>, seen: u64| {
        let tap = match d.dev_addr {
            Some(a) if !a.addr.is_unspecified() => a.addr.to_string(),
            _ => String::new(),
        };
        format!(
            "{n:4} | {tap:<15} | {:<17} | {:<21} | {:<15} | {:>9} |\n",
            mac_text(mac),
            sock_text(sock),
            d.desc.text(),
            seen_text(now_us, seen)
        )
    };
    for (i, (mac, p)) in pending.iter().enumerate() {
        buf.push_str(&peer_row(
            i + 1,
            mac,
            &p.details,
            p.sock,
            wall(m, p.last_seen_us),
        ));
        out.push(std::mem::take(&mut buf));
    }
    for (i, (mac, k)) in verifying.iter().enumerate() {
        buf.push_str(&peer_row(
            pending.len() + i + 1,
            mac,
            &k.details,
            Some(k.sock),
            wall(m, k.last_rx_us),
        ));
        out.push(std::mem::take(&mut buf));
    }
    buf.push_str(RULE_SINGLE);
    buf.push_str("PEER TO PEER\n");
    for (i, (mac, k)) in known.iter().enumerate() {
        buf.push_str(&peer_row(
            i + 1,
            mac,
            &k.details,
            Some(k.sock),
            wall(m, k.last_rx_us),
        ));
        out.push(std::mem::take(&mut buf));
    }
    buf.push_str(RULE_SINGLE);
    buf.push_str("SUPERNODES\n");
    for sn in m.supernodes() {
        let current = if sn.addr == m.supernode() {
            if m.waiting_for_supernode() { "." } else { "*" }
        } else {
            ""
        };
        let uptime = if sn.uptime == 0 {
            String::new()
        } else {
            format!("{:10}", sn.uptime)
        };
        buf.push_str(&format!(
            "{:<19} {:>1}{:>1} | {:<17} | {:<21} | {:<15} | {:>9} | {:>10}\n",
            sn.version.text(),
            if sn.purgeable { "" } else { "l" },
            current,
            sn.mac.as_ref().map(mac_text).unwrap_or_default(),
            sn.addr,
            selection_text(m, sn),
            seen_text(now_us, wall(m, sn.last_seen_us)),
            uptime
        ));
        out.push(std::mem::take(&mut buf));
    }
    buf.push_str(RULE_DOUBLE);
    buf.push_str(&format!(
        "uptime {} | pend_peers {} | known_peers {} | transop {},{}\n",
        ago(now_us, wall(m, m.start_us())),
        pending.len() + verifying.len(),
        known.len(),
        load(&c.transop_tx) as u32,
        load(&c.transop_rx) as u32
    ));
    buf.push_str(&format!(
        "super {},{} | p2p {},{}\n",
        super_tx(c) as u32,
        load(&c.super_rx) as u32,
        load(&c.p2p_tx) as u32,
        load(&c.p2p_rx) as u32
    ));
    buf.push_str(&format!(
        "last_super {} sec ago | last_p2p {} sec ago\n",
        ago(now_us, last_super(m, tunnel)),
        ago(now_us, last_p2p(tunnel))
    ));
    buf.push_str("\nType \"help\" to see more commands.\n\n");
    out.push(buf);
    out
}

/// The `selection` field as n2n's sn_selection_criterion_str (at most 15 characters): empty
/// for the default/good/bad placeholders.
fn selection_text(m: &Edge, sn: &KnownSupernode) -> String {
    if sn.criterion >= u64::MAX >> 2 {
        return String::new();
    }
    let mut s = match m.selection() {
        Selection::Load => format!("load = {:8}", sn.criterion),
        Selection::Rtt => format!("rtt = {:6} ms", sn.criterion),
        Selection::Mac if sn.criterion == 0 => String::new(),
        Selection::Mac if sn.addr == m.supernode() => "active".into(),
        Selection::Mac => "standby".into(),
    };
    s.truncate(15);
    s
}

fn json_request(
    m: &Edge,
    tunnel: &Tunnel,
    ctl: &mut Control,
    request: &[u8],
    from: SocketAddr,
) -> Vec<String> {
    let req = match mgmt::parse(request, ctl.password_hash) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    if req.kind == Kind::Subscribe {
        return subscribe(ctl, &req, from);
    }
    if let Err(reply) = mgmt::lookup(&req, &METHODS) {
        return reply;
    }
    let mut rows = Rows::new(&req.tag, &req.method);
    method(m, tunnel, ctl, &req, from, &mut rows);
    rows.end()
}

/// `s <tag>:1:<password> <topic>`: the replaced subscriber hears first, as in n2n.
fn subscribe(ctl: &mut Control, req: &Request, from: SocketAddr) -> Vec<String> {
    if !TOPICS.iter().any(|t| t.0 == req.method) {
        return mgmt::error(&req.tag, "unknowntopic");
    }
    let queued = ctl.subs.outbox.len();
    let replies = ctl.subs.subscribe(&req.method, &req.tag, from);
    let mut out = take_for(&mut ctl.subs, queued, from);
    out.extend(replies);
    out
}

/// Moves the lines queued since `queued` for `to` out of the outbox, so that they reach the
/// requester in sequence with its replies.
fn take_for(subs: &mut Subscriptions, queued: usize, to: SocketAddr) -> Vec<String> {
    let new = subs.outbox.split_off(queued.min(subs.outbox.len()));
    let (mine, others): (Vec<_>, Vec<_>) = new.into_iter().partition(|(a, _)| *a == to);
    subs.outbox.extend(others);
    mine.into_iter().map(|(_, line)| line).collect()
}

fn method(
    m: &Edge,
    tunnel: &Tunnel,
    ctl: &mut Control,
    req: &Request,
    from: SocketAddr,
    rows: &mut Rows<'_>,
) {
    let c = tunnel.counters();
    if mgmt::stop_or_verbose(req, rows, &mut ctl.keep_running, &mut ctl.verbosity) {
        return;
    }
    match req.method.as_str() {
        "help" => mgmt::help_rows(rows, &METHODS),
        "help.events" => {
            for fields in ctl.subs.help_fields() {
                rows.row(&fields);
            }
        }
        "post.test" => {
            rows.row("\"sending\":\"test\"");
            // n2n prints a missing argument with printf's "(null)".
            let text = req.arg.as_deref().unwrap_or("(null)");
            let queued = ctl.subs.outbox.len();
            ctl.subs.post("test", &format!("\"test\":{}", js(text)));
            for line in take_for(&mut ctl.subs, queued, from) {
                rows.raw(line);
            }
        }
        "communities" => {
            if tunnel.config().header_key.is_some() {
                rows.error("noaccess");
            } else {
                rows.row(&format!("\"community\":{}", js(&m.community().text())));
            }
        }
        "edges" => {
            let (pending, verifying, known) = peers(m);
            for (mac, p) in pending {
                rows.row(&edge_fields(
                    "pSp",
                    mac,
                    &p.details,
                    0,
                    p.sock,
                    0,
                    wall(m, p.last_query_us),
                    wall(m, p.last_seen_us),
                ));
            }
            // Still relayed while their path is verified: listed as pending, at that socket.
            for (mac, k) in verifying {
                rows.row(&edge_fields(
                    "pSp",
                    mac,
                    &k.details,
                    0,
                    Some(k.sock),
                    0,
                    0,
                    wall(m, k.last_rx_us),
                ));
            }
            for (mac, k) in known {
                // "local": the path was found on the LAN.
                let local = u8::from(k.cookie >= n2n_proto::cookie::MCAST);
                rows.row(&edge_fields(
                    "p2p",
                    mac,
                    &k.details,
                    local,
                    Some(k.sock),
                    wall(m, k.last_rx_us),
                    0,
                    wall(m, k.last_rx_us),
                ));
            }
        }
        "supernodes" => {
            for sn in m.supernodes() {
                let current = if sn.addr == m.supernode() {
                    if m.waiting_for_supernode() { 2 } else { 1 }
                } else {
                    0
                };
                rows.row(&format!(
                    "\"version\":{},\"purgeable\":{},\"current\":{current},\"macaddr\":{},\"sockaddr\":{},\"selection\":{},\"last_seen\":{},\"uptime\":{}",
                    js(&sn.version.text()),
                    u8::from(sn.purgeable),
                    js(&sn.mac.as_ref().map(mac_text).unwrap_or_default()),
                    js(&sn.addr.to_string()),
                    js(&selection_text(m, sn)),
                    secs(wall(m, sn.last_seen_us)),
                    sn.uptime
                ));
            }
        }
        "info" => {
            let (ip, mask) = match m.dev_addr() {
                Some(a) => (a.addr, Ipv4Addr::from(a.netmask())),
                None => (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED),
            };
            rows.row(&format!(
                "\"version\":{},\"macaddr\":{},\"ip4addr\":{},\"ip4netmask\":{},\"sockaddr\":{}",
                js(concat!("n2n-rs-", env!("CARGO_PKG_VERSION"))),
                js(&mac_text(&m.mac())),
                js(&ip.to_string()),
                js(&mask.to_string()),
                js(&sock_text(Some(ctl.local)))
            ));
        }
        "timestamps" => {
            rows.row(&format!(
                "\"start_time\":{},\"last_super\":{},\"last_p2p\":{}",
                secs(wall(m, m.start_us())),
                secs(last_super(m, tunnel)),
                secs(last_p2p(tunnel))
            ));
        }
        "packetstats" => {
            let stat = |kind: &str, tx: u64, rx: u64| {
                format!(
                    "\"type\":\"{kind}\",\"tx_pkt\":{},\"rx_pkt\":{}",
                    tx as u32, rx as u32
                )
            };
            // transop is an unsigned long in n2n, the others unsigned ints.
            rows.row(&format!(
                "\"type\":\"transop\",\"tx_pkt\":{},\"rx_pkt\":{}",
                load(&c.transop_tx),
                load(&c.transop_rx)
            ));
            rows.row(&stat("p2p", load(&c.p2p_tx), load(&c.p2p_rx)));
            rows.row(&stat("super", super_tx(c), load(&c.super_rx)));
            // Broadcasts received through the supernode are not counted apart (yet).
            rows.row(&stat(
                "super_broadcast",
                load(&c.super_broadcast_tx),
                load(&c.super_broadcast_rx),
            ));
        }
        "drops" => {
            mgmt::drop_rows(rows, "tunnel", DropReason::ALL.map(|r| (r, c.dropped(r))));
            let refused = &m.stats().refused;
            mgmt::drop_rows(
                rows,
                "machine",
                Refusal::ALL.map(|r| (r, refused[r.index()])),
            );
        }
        // reload_communities
        _ => rows.error("unimplemented"),
    }
}

/// One `edges` row, as n2n's mgmt_edges_row (with its two line breaks inside the object).
#[allow(clippy::too_many_arguments)]
fn edge_fields(
    mode: &str,
    mac: &Mac,
    d: &Details,
    local: u8,
    sock: Option<SocketAddr>,
    last_p2p_us: u64,
    last_query_us: u64,
    last_seen_us: u64,
) -> String {
    format!(
        "\"mode\":\"{mode}\",\"ip4addr\":{},\"purgeable\":1,\"local\":{local},\"macaddr\":{},\"sockaddr\":{},\"desc\":{},\"last_p2p\":{},\n\"last_sent_query\":{},\n\"last_seen\":{}",
        js(&subnet_text(d.dev_addr)),
        js(&mac_text(mac)),
        js(&sock_text(sock)),
        js(&d.desc.text()),
        secs(last_p2p_us),
        secs(last_query_us),
        secs(last_seen_us)
    )
}

/// n2n's `last_sup`: the last ACK or PACKET from a supernode.
fn last_super(m: &Edge, tunnel: &Tunnel) -> u64 {
    let relayed = tunnel.counters().last_super_rx_us.load(Ordering::Relaxed);
    wall(m, m.stats().last_super_us).max(relayed)
}

/// n2n's `last_p2p`: the last PACKET received directly from a peer.
fn last_p2p(tunnel: &Tunnel) -> u64 {
    tunnel.counters().last_p2p_rx_us.load(Ordering::Relaxed)
}
