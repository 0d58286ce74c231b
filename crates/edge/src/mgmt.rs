//! The edge's management interface on 127.0.0.1:5644 (spec §8): n2n's text commands and its
//! JSON API (`edges`, `supernodes`, `timestamps`, `packetstats`, `verbose`, `stop`, …).

use std::sync::atomic::Ordering;

use n2n_daemon::mgmt::{self, MAX_REQUEST, Rows, js};

use crate::datapath::Shared;
use crate::events::{Subscriptions, TOPICS};
use crate::machine::{Details, Edge, KnownSupernode, Selection};

/// What the management API may change.
#[derive(Debug)]
pub struct Control {
    pub password_hash: u64,
    pub verbosity: u8,
    pub keep_running: bool,
    pub subs: Subscriptions,
}

const METHODS: [(&str, bool, &str); 12] = [
    ("reload_communities", true, "Reserved for supernode"),
    ("communities", false, "Show current community"),
    ("edges", false, "List current edges/peers"),
    ("help", true, "Show JSON commands"),
    ("help.events", false, "Show available Subscribe topics"),
    ("info", false, "Provide basic edge information"),
    ("packetstats", false, "traffic counters"),
    ("post.test", false, "send a test event"),
    ("stop", true, "Gracefully exit edge"),
    ("supernodes", false, "List current supernodes"),
    ("timestamps", false, "Event timestamps"),
    ("verbose", true, "Manage verbosity level"),
];

/// Handles one request datagram from `from`; returns the reply datagrams (messages for other
/// subscribers go to `ctl.subs.outbox`).
pub fn handle(
    m: &Edge,
    shared: &Shared,
    ctl: &mut Control,
    now_us: u64,
    request: &[u8],
    from: std::net::SocketAddr,
) -> Vec<String> {
    let text = String::from_utf8_lossy(&request[..request.len().min(MAX_REQUEST)]).into_owned();
    let text = text.trim_end_matches(['\r', '\n']);
    if text.starts_with("help") || text.starts_with('?') {
        return vec!["Help for edge management console:\n\tstop    | Gracefully exit edge\n\thelp    | This help message\n\t+verb   | Increase verbosity of logging\n\t-verb   | Decrease verbosity of logging\n\tr ...   | start query with JSON reply\n\tw ...   | start update with JSON reply\n\ts ...   | subscribe to event channel JSON reply\n\t<enter> | Display statistics\n".into()];
    }
    if text.starts_with("stop") {
        ctl.keep_running = false;
        return Vec::new();
    }
    if text.starts_with("+verb") {
        ctl.verbosity = (ctl.verbosity + 1).min(4);
        return vec![format!("> +OK traceLevel={}\n", ctl.verbosity)];
    }
    if text.starts_with("-verb") {
        if ctl.verbosity == 0 {
            return vec!["> -NOK traceLevel=0\n".into()];
        }
        ctl.verbosity -= 1;
        return vec![format!("> -OK traceLevel={}\n", ctl.verbosity)];
    }
    if text.len() >= 2 && text.as_bytes()[0].is_ascii_lowercase() && text.as_bytes()[1] == b' ' {
        if text.starts_with("s ") {
            return subscribe(ctl, text, from);
        }
        return json_request(m, shared, ctl, now_us, text);
    }
    status_table(m, shared, now_us)
}

fn status_table(m: &Edge, shared: &Shared, now_us: u64) -> Vec<String> {
    let ago = |us: u64| {
        if us == 0 {
            0
        } else {
            now_us.saturating_sub(us) / 1_000_000
        }
    };
    let c = &shared.counters;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut out = Vec::new();
    if shared.cfg.header_key.is_some() {
        out.push("COMMUNITY -- header encrypted --\n".to_string());
    } else {
        out.push(format!("COMMUNITY '{}'\n", m.community()));
    }
    out.push(format!(
        "{:<4} | {:<17} | {:<21} | {}\n",
        "###", "MAC", "EDGE", "LAST SEEN"
    ));
    out.push("SUPERNODE FORWARD\n".into());
    for (i, (mac, p)) in m.pending().enumerate() {
        let sock = p.sock.map(|s| s.to_string()).unwrap_or_default();
        out.push(format!(
            "{:<4} | {:<17} | {:<21} | {}\n",
            i + 1,
            mac.to_string(),
            sock,
            ago(p.last_seen_us)
        ));
    }
    out.push("PEER TO PEER\n".into());
    for (i, (mac, k)) in m.known().enumerate() {
        out.push(format!(
            "{:<4} | {:<17} | {:<21} | {}\n",
            i + 1,
            mac.to_string(),
            k.sock.to_string(),
            ago(k.last_rx())
        ));
    }
    out.push("SUPERNODES\n".into());
    for (i, sn) in m.supernodes().iter().enumerate() {
        let sn = sn.addr;
        let mark = if sn == m.supernode() {
            if m.waiting_for_supernode() { "." } else { "*" }
        } else {
            " "
        };
        out.push(format!("{:<4} | {mark} {sn}\n", i + 1));
    }
    out.push(format!("uptime {} | pend_peers {} | known_peers {} | transop {},{} | super {},{} | p2p {},{} | last_super {} sec ago | last_p2p {} sec ago\n",
        ago(m.start_us()), m.pending().count(), m.known().count(), get(&c.transop_tx), get(&c.transop_rx),
        get(&c.super_tx) + get(&c.super_broadcast_tx), get(&c.super_rx), get(&c.p2p_tx), get(&c.p2p_rx),
        ago(m.stats().last_super_us), ago(m.stats().last_p2p_us)));
    out.push("\nType \"help\" to see more commands.\n\n".into());
    out
}

/// The `selection` field as n2n prints it: empty for the default/good/bad placeholders.
fn selection_text(m: &Edge, sn: &KnownSupernode, current: bool) -> String {
    if sn.criterion >= u64::MAX >> 2 {
        return String::new();
    }
    match m.selection() {
        Selection::Load => format!("load = {:8}", sn.criterion),
        Selection::Rtt => format!("rtt = {:6} ms", sn.criterion),
        Selection::Mac if current => "active".into(),
        Selection::Mac => "standby".into(),
    }
}

/// `s <tag>:1:<password> <topic>`.
fn subscribe(ctl: &mut Control, text: &str, from: std::net::SocketAddr) -> Vec<String> {
    match mgmt::parse_in(text, ctl.password_hash, &TOPICS, "unknowntopic") {
        Ok(req) => ctl.subs.subscribe(req.method, &req.tag, from),
        Err(reply) => reply,
    }
}

fn json_request(
    m: &Edge,
    shared: &Shared,
    ctl: &mut Control,
    now_us: u64,
    text: &str,
) -> Vec<String> {
    let req = match mgmt::parse(text, ctl.password_hash, &METHODS) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let (tag, method) = (req.tag.as_str(), req.method);
    let secs = |us: u64| us / 1_000_000;
    let mut rows = Rows::new(tag, method);
    let c = &shared.counters;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    match method {
        "help" => return mgmt::help_rows(tag, &METHODS),
        "help.events" => {
            for fields in ctl.subs.help_fields() {
                rows.row(&fields);
            }
        }
        "post.test" => {
            rows.row("\"sending\":\"test\"");
            let text = req.arg.unwrap_or("");
            ctl.subs.post("test", &format!("\"test\":{}", js(text)));
        }
        "stop" | "verbose" => {
            let fields = mgmt::stop_or_verbose(&req, &mut ctl.keep_running, &mut ctl.verbosity)
                .unwrap_or_default();
            rows.row(&fields);
        }
        "communities" => {
            if shared.cfg.header_key.is_some() {
                return mgmt::error(tag, "noaccess");
            }
            rows.row(&format!("\"community\":{}", js(&m.community().text())));
        }
        "edges" => {
            let addr = |d: &Details| d.dev_addr.map(|a| a.to_string()).unwrap_or_default();
            for (mac, p) in m.pending() {
                let sock = p.sock.map(|s| s.to_string()).unwrap_or_default();
                rows.row(&format!("\"mode\":\"pSp\",\"ip4addr\":{},\"purgeable\":1,\"local\":0,\"macaddr\":{},\"sockaddr\":{},\"desc\":{},\"last_p2p\":0,\"last_sent_query\":{},\"last_seen\":{}",
                    js(&addr(&p.details)), js(&mac.to_string()), js(&sock), js(&p.details.desc.text()), secs(p.last_query_us), secs(p.last_seen_us)));
            }
            for (mac, k) in m.known() {
                // "local": the path was found on the LAN (multicast or the preferred socket).
                let local = u8::from(k.cookie >= n2n_proto::cookie::MCAST);
                rows.row(&format!("\"mode\":\"p2p\",\"ip4addr\":{},\"purgeable\":1,\"local\":{local},\"macaddr\":{},\"sockaddr\":{},\"desc\":{},\"last_p2p\":{},\"last_sent_query\":0,\"last_seen\":{}",
                    js(&addr(&k.details)), js(&mac.to_string()), js(&k.sock.to_string()), js(&k.details.desc.text()), secs(k.last_rx()), secs(k.last_rx())));
            }
        }
        "supernodes" => {
            for sn in m.supernodes() {
                let current = if sn.addr == m.supernode() {
                    if m.waiting_for_supernode() { 2 } else { 1 }
                } else {
                    0
                };
                let mac = sn.mac.map(|x| x.to_string()).unwrap_or_default();
                rows.row(&format!("\"version\":{},\"purgeable\":{},\"current\":{current},\"macaddr\":{},\"sockaddr\":{},\"selection\":{},\"last_seen\":{},\"uptime\":{}",
                    js(&sn.version.text()), u8::from(sn.purgeable), js(&mac), js(&sn.addr.to_string()),
                    js(&selection_text(m, sn, current == 1)), secs(sn.last_seen_us), sn.uptime));
            }
        }
        "info" => {
            let (ip, mask) = match m.dev_addr() {
                Some(a) => (
                    a.addr.to_string(),
                    std::net::Ipv4Addr::from(a.netmask()).to_string(),
                ),
                None => (String::new(), String::new()),
            };
            rows.row(&format!(
                "\"version\":{},\"macaddr\":{},\"ip4addr\":{},\"ip4netmask\":{},\"sockaddr\":\"\"",
                js(concat!("n2n-rs-", env!("CARGO_PKG_VERSION"))),
                js(&m.mac().to_string()),
                js(&ip),
                js(&mask)
            ));
        }
        "timestamps" => {
            rows.row(&format!(
                "\"start_time\":{},\"last_super\":{},\"last_p2p\":{}",
                secs(m.start_us()),
                secs(m.stats().last_super_us),
                secs(m.stats().last_p2p_us)
            ));
        }
        "packetstats" => {
            rows.row(&format!(
                "\"type\":\"transop\",\"tx_pkt\":{},\"rx_pkt\":{}",
                get(&c.transop_tx),
                get(&c.transop_rx)
            ));
            rows.row(&format!(
                "\"type\":\"p2p\",\"tx_pkt\":{},\"rx_pkt\":{}",
                get(&c.p2p_tx),
                get(&c.p2p_rx)
            ));
            rows.row(&format!(
                "\"type\":\"super\",\"tx_pkt\":{},\"rx_pkt\":{}",
                get(&c.super_tx),
                get(&c.super_rx)
            ));
            rows.row(&format!(
                "\"type\":\"super_broadcast\",\"tx_pkt\":{},\"rx_pkt\":0",
                get(&c.super_broadcast_tx)
            ));
        }
        _ => return mgmt::error(tag, "unimplemented"),
    }
    let _ = now_us;
    rows.end()
}
