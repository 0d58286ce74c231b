//! The management interface on 127.0.0.1 (spec §8), as n2n's sn_management.c: the plain-text
//! commands (help, reload_communities, the status table) and the JSON `r`/`w`/`s` API, field
//! for field and datagram for datagram. Pure request → replies; the shell owns the socket.

use std::net::SocketAddr;

use n2n_daemon::mgmt::{self, Method, Request, Rows, ago, js, secs};
use n2n_proto::{IpSubnet, Mac};

use crate::community_list::{CommunityList, ListError};
use crate::machine::{DropReason, Outbox, Supernode};

/// What the management API may change besides the machine.
#[derive(Debug)]
pub struct Control {
    pub password_hash: u64,
    /// n2n trace level: 0 error … 4 debug (2 normal).
    pub verbosity: u8,
    pub keep_running: bool,
    /// The `-c` file, for `reload_communities`.
    pub list_path: Option<String>,
    /// What a reload asks to send (re-registration requests, federation registrations).
    pub out: Outbox,
}

/// Why a reload failed, with n2n's load_allowed_sn_community() result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadError {
    /// No `-c`.
    NoFile,
    /// The file cannot be read (-1).
    Unreadable,
    /// The file names no community and no pattern (-2).
    Empty,
}

impl ReloadError {
    /// n2n's status text for the plain-text command.
    pub fn text(self) -> &'static str {
        match self {
            ReloadError::NoFile => "No community file provided (-c command line option)",
            _ => "Error while re-loading community file (not found or no valid content)",
        }
    }
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

/// Reloads the community list from `-c`. (n2n clears its communities before it finds a file
/// without valid content; the running list is kept here.)
pub fn reload(sn: &mut Supernode, ctl: &mut Control, now_us: u64) -> Result<(), ReloadError> {
    let Some(path) = &ctl.list_path else {
        return Err(ReloadError::NoFile);
    };
    match CommunityList::load(path) {
        Ok(list) => {
            sn.reload(now_us, Some(list), &mut ctl.out);
            Ok(())
        }
        Err(ListError::Unreadable { .. }) => Err(ReloadError::Unreadable),
        Err(ListError::Empty(_)) => Err(ReloadError::Empty),
    }
}

/// The reply to `help` (and `?`).
pub const HELP: &str = "Help for supernode management console:\n\
\thelp                 | This help message\n\
\treload_communities   | Reloads communities and user's public keys\n\
\t<enter>              | Display status and statistics\n";

/// n2n's mgmt_handlers[] in its order (the `help` rows follow it), then n2n-rs's `drops`.
pub const METHODS: [Method; 10] = [
    ("supernodes", false, "Reserved for edge"),
    ("stop", true, "Gracefully exit edge"),
    ("verbose", true, "Manage verbosity level"),
    (
        "reload_communities",
        true,
        "Reloads communities and user's public keys",
    ),
    ("communities", false, "List current communities"),
    ("edges", false, "List current edges/peers"),
    ("timestamps", false, "Event timestamps"),
    ("packetstats", false, "Traffic statistics"),
    ("help", true, "Show JSON commands"),
    ("drops", false, "Dropped datagrams by reason"),
];

/// The federation's name in every listing.
const FEDERATION: &str = "-/-";

const RULE_DOUBLE: &str = "========================================================================================================\n";
const RULE_SINGLE: &str = "--------------------------------------------------------------------------------------------------------\n";

/// Handles one request datagram; returns the reply datagrams.
pub fn handle(sn: &mut Supernode, ctl: &mut Control, now_us: u64, request: &[u8]) -> Vec<String> {
    if request.starts_with(b"help") || request.starts_with(b"?") {
        return vec![HELP.to_string()];
    }
    if request.starts_with(b"reload_communities") {
        let line = match reload(sn, ctl, now_us) {
            Ok(()) => "OK.",
            Err(e) => e.text(),
        };
        return vec![format!("{line}\n")];
    }
    // (n2n's test accepts any first character.)
    if request.len() >= 2 && request[1] == b' ' {
        return json_request(sn, ctl, now_us, request);
    }
    // (n2n stops on an empty datagram; it gets the status here.)
    status_table(sn, now_us)
}

fn mac_text(mac: &Mac) -> String {
    if mac.is_null() {
        String::new()
    } else {
        mac.to_string()
    }
}

/// `a.b.c.d/n`, or empty for address 0.
fn subnet_text(s: &IpSubnet) -> String {
    if s.addr.is_unspecified() {
        String::new()
    } else {
        s.to_string()
    }
}

/// One row of the federation or a community, as both listings need it.
struct EdgeRow {
    ip4addr: String,
    purgeable: bool,
    mac: String,
    sock: SocketAddr,
    desc: String,
    last_seen_us: u64,
    /// A `-S2` edge (on a TCP connection).
    tcp: bool,
}

/// One community of the listings: the federation (`-/-`) or a community, with its edges.
struct Listed {
    name: String,
    federation: bool,
    purgeable: bool,
    subnet: String,
    edges: Vec<EdgeRow>,
}

/// The federation, then every community; each community's edges by address (n2n sorts them
/// so when it assigns one), then MAC.
fn listing(sn: &Supernode) -> Vec<Listed> {
    let members = sn
        .federation()
        .members
        .iter()
        .map(|m| EdgeRow {
            ip4addr: String::new(),
            purgeable: !m.anchor,
            mac: mac_text(&m.mac),
            sock: m.sock,
            desc: String::new(),
            last_seen_us: m.last_seen_us,
            tcp: false,
        })
        .collect();
    let mut out = vec![Listed {
        name: FEDERATION.into(),
        federation: true,
        purgeable: false,
        subnet: String::new(),
        edges: members,
    }];
    for c in sn.communities() {
        let mut edges: Vec<_> = c.edges.values().collect();
        edges.sort_by_key(|e| (e.dev_addr.addr, e.mac));
        let edges = edges
            .into_iter()
            .map(|e| EdgeRow {
                ip4addr: subnet_text(&e.dev_addr),
                purgeable: true,
                mac: mac_text(&e.mac),
                sock: e.sock,
                desc: e.desc.text().into_owned(),
                last_seen_us: e.last_seen_us,
                tcp: sn.is_tcp_peer(&e.sock),
            })
            .collect();
        out.push(Listed {
            name: c.name.text().into_owned(),
            federation: false,
            purgeable: c.purgeable(),
            subnet: subnet_text(&c.subnet),
            edges,
        });
    }
    out
}

/// A machine time (monotonic) as the wall-clock time n2n shows; 0 stays "never".
fn wall(sn: &Supernode, mono_us: u64) -> u64 {
    if mono_us == 0 {
        0
    } else {
        sn.wall_time(mono_us)
    }
}

/// The plain-text status: the heading rides with the first community line, then one datagram
/// per community line and per edge row, and the totals, as n2n sends it. Times are wall-clock
/// times, so "never" (0) shows as n2n shows it.
fn status_table(sn: &Supernode, now_us: u64) -> Vec<String> {
    let now_us = sn.wall_time(now_us);
    let mut out = Vec::new();
    let mut buf = format!(
        " ### | TAP                 | MAC               | EDGE                      | HINT            | LAST SEEN\n{RULE_DOUBLE}"
    );
    let listing = listing(sn);
    let mut edges = 0;
    for (i, c) in listing.iter().enumerate() {
        if i > 0 {
            buf.push_str(RULE_SINGLE);
        }
        let kind = match (c.federation, c.purgeable) {
            (true, _) => "FEDERATION",
            (false, true) => "COMMUNITY",
            (false, false) => "FIXED NAME COMMUNITY",
        };
        buf.push_str(&format!("{kind} '{}'\n", c.name));
        out.push(std::mem::take(&mut buf));
        edges += c.edges.len();
        for (n, e) in c.edges.iter().enumerate() {
            let tap = match (e.ip4addr.is_empty(), e.purgeable) {
                (false, _) => e.ip4addr.as_str(),
                (true, true) => "",
                (true, false) => "-l",
            };
            let seen = if e.last_seen_us == 0 {
                String::new()
            } else {
                format!("{:9}", ago(now_us, wall(sn, e.last_seen_us)) as u32)
            };
            out.push(format!(
                "{:4} | {tap:<19} | {:<17} | {:<21} {:<3} | {:<15} | {seen:>9}\n",
                n + 1,
                e.mac,
                e.sock.to_string(),
                if e.tcp { "TCP" } else { "" },
                e.desc,
            ));
        }
    }
    let s = sn.stats();
    buf.push_str(RULE_DOUBLE);
    buf.push_str(&format!(
        "uptime {} | edges {} | reg_sup {} | reg_nak {} | errors {} \n",
        ago(now_us, wall(sn, sn.start_us())),
        edges as u32,
        s.reg_super_rx as u32,
        s.reg_super_nak as u32,
        s.errors() as u32
    ));
    buf.push_str(&format!(
        "fwd {} | broadcast {} | cur_cmnts {}\n",
        s.forward_tx as u32,
        s.broadcast_tx as u32,
        listing.len()
    ));
    buf.push_str(&format!(
        "last_fwd  {} sec ago | last reg  {} sec ago\n\n",
        ago(now_us, wall(sn, s.last_fwd_us)) as u64,
        ago(now_us, wall(sn, s.last_reg_super_us)) as u64
    ));
    out.push(buf);
    out
}

fn json_request(sn: &mut Supernode, ctl: &mut Control, now_us: u64, request: &[u8]) -> Vec<String> {
    // A subscription (with the password) reads like `r`: the supernode has no topics.
    let req = match mgmt::parse(request, ctl.password_hash) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    if let Err(reply) = mgmt::lookup(&req, &METHODS) {
        return reply;
    }
    let mut rows = Rows::new(&req.tag, &req.method);
    method(sn, ctl, now_us, &req, &mut rows);
    rows.end()
}

fn method(sn: &mut Supernode, ctl: &mut Control, now_us: u64, req: &Request, rows: &mut Rows<'_>) {
    if mgmt::stop_or_verbose(req, rows, &mut ctl.keep_running, &mut ctl.verbosity) {
        return;
    }
    match req.method.as_str() {
        "help" => mgmt::help_rows(rows, &METHODS),
        "reload_communities" => {
            if req.kind != mgmt::Kind::Write {
                return rows.error("writeonly");
            }
            // n2n's load_allowed_sn_community() result, printed unsigned.
            let ok: i32 = match reload(sn, ctl, now_us) {
                Err(ReloadError::NoFile) => return rows.error("nofile"),
                Ok(()) => 0,
                Err(ReloadError::Unreadable) => -1,
                Err(ReloadError::Empty) => -2,
            };
            rows.row(&format!("\"ok\":{}", ok as u32));
        }
        "communities" => {
            for c in listing(sn) {
                rows.row(&format!(
                    "\"community\":{},\"purgeable\":{},\"is_federation\":{},\"ip4addr\":{}",
                    js(&c.name),
                    u8::from(c.purgeable),
                    u8::from(c.federation),
                    js(&c.subnet)
                ));
            }
        }
        "edges" => {
            for c in listing(sn) {
                for e in c.edges {
                    rows.row(&format!(
                        "\"community\":{},\"ip4addr\":{},\"purgeable\":{},\"macaddr\":{},\"sockaddr\":{},\"proto\":\"{}\",\"desc\":{},\"last_seen\":{}",
                        js(&c.name),
                        js(&e.ip4addr),
                        u8::from(e.purgeable),
                        js(&e.mac),
                        js(&e.sock.to_string()),
                        if e.tcp { "TCP" } else { "UDP" },
                        js(&e.desc),
                        secs(wall(sn, e.last_seen_us))
                    ));
                }
            }
        }
        "timestamps" => {
            let s = sn.stats();
            rows.row(&format!(
                "\"start_time\":{},\"last_fwd\":{},\"last_reg_super\":{}",
                secs(wall(sn, sn.start_us())),
                secs(wall(sn, s.last_fwd_us)),
                secs(wall(sn, s.last_reg_super_us))
            ));
        }
        "packetstats" => {
            let s = sn.stats();
            rows.row(&format!("\"type\":\"forward\",\"tx_pkt\":{}", s.forward_tx));
            rows.row(&format!(
                "\"type\":\"broadcast\",\"tx_pkt\":{}",
                s.broadcast_tx
            ));
            rows.row(&format!(
                "\"type\":\"reg_super\",\"rx_pkt\":{},\"nak\":{}",
                s.reg_super_rx, s.reg_super_nak
            ));
            rows.row(&format!("\"type\":\"errors\",\"tx_pkt\":{}", s.errors()));
        }
        "drops" => {
            let counts = DropReason::ALL.map(|r| (r, sn.stats().dropped_for(r)));
            mgmt::drop_rows(rows, "machine", counts);
        }
        // supernodes
        _ => rows.error("unimplemented"),
    }
}
