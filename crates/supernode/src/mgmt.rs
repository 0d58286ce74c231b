//! The management interface on 127.0.0.1 (spec §8): n2n's plain-text commands and its JSON
//! `r`/`w`/`s` API. Pure request → replies; the shell owns the socket.

use n2n_daemon::mgmt::{self, Rows, error, js};

use crate::community_list::CommunityList;
use crate::machine::{Outbox, Supernode};

use n2n_daemon::mgmt::MAX_REQUEST;

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

/// Reloads the community list from `-c`: `Ok(())`, or the reference's status text.
pub fn reload(sn: &mut Supernode, ctl: &mut Control, now_us: u64) -> Result<(), &'static str> {
    let Some(path) = &ctl.list_path else {
        return Err("No community file provided (-c command line option)");
    };
    match CommunityList::load(path) {
        Ok(list) => {
            sn.reload(now_us, Some(list), &mut ctl.out);
            Ok(())
        }
        Err(_) => Err("Error while re-loading community file (not found or no valid content)"),
    }
}

/// Handles one request datagram; returns the reply datagrams.
pub fn handle(sn: &mut Supernode, ctl: &mut Control, now_us: u64, request: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(&request[..request.len().min(MAX_REQUEST)]).into_owned();
    let text = text.trim_end_matches(['\r', '\n']);
    if text.starts_with("help") || text.starts_with('?') {
        return vec![
            "Help for supernode management console:\n\thelp               | This help message\n\treload_communities | Reloads communities and user's public keys\n\t<enter>            | Display status and statistics\n"
                .to_string(),
        ];
    }
    if text.starts_with("reload_communities") {
        let line = match reload(sn, ctl, now_us) {
            Ok(()) => "OK.".to_string(),
            Err(e) => e.to_string(),
        };
        return vec![format!("{line}\n")];
    }
    if text.len() >= 2 && text.as_bytes()[1] == b' ' {
        return json_request(sn, ctl, now_us, text);
    }
    status_table(sn, now_us)
}

fn status_table(sn: &Supernode, now_us: u64) -> Vec<String> {
    let secs = |us: u64| now_us.saturating_sub(us) / 1_000_000;
    let mut out = vec![format!(
        "{:<4} | {:<15} | {:<17} | {:<21} | {:<15} | {}\n",
        "###", "TAP", "MAC", "EDGE", "HINT", "LAST SEEN"
    )];
    let mut n = 0;
    out.push("FEDERATION '-/-'\n".into());
    for m in &sn.federation().members {
        n += 1;
        out.push(format!(
            "{n:<4} | {:<15} | {:<17} | {:<21} | {:<15} | {}\n",
            if m.anchor { "-l" } else { "" },
            if m.mac.is_null() {
                String::new()
            } else {
                m.mac.to_string()
            },
            m.sock.to_string(),
            "",
            if m.last_seen_us == 0 {
                String::new()
            } else {
                secs(m.last_seen_us).to_string()
            }
        ));
    }
    for c in sn.communities() {
        let kind = if c.listed {
            "FIXED NAME COMMUNITY"
        } else {
            "COMMUNITY"
        };
        out.push(format!("{kind} '{}'\n", c.name));
        for e in c.edges.values() {
            n += 1;
            out.push(format!(
                "{n:<4} | {:<15} | {:<17} | {:<21} | {:<15} | {}\n",
                e.dev_addr.addr.to_string(),
                e.mac.to_string(),
                e.sock.to_string(),
                e.desc.text(),
                secs(e.last_seen_us)
            ));
        }
    }
    let s = sn.stats();
    out.push(format!("uptime    {}\n", secs(sn.start_us())));
    out.push(format!("edges     {}\n", sn.edge_count()));
    out.push(format!("reg_sup   {}\n", s.reg_super_rx));
    out.push(format!("reg_nak   {}\n", s.reg_super_nak));
    out.push(format!("errors    {}\n", s.errors));
    out.push(format!("fwd       {}\n", s.forward_tx));
    out.push(format!("broadcast {}\n", s.broadcast_tx));
    out.push(format!("cur_cmnts {}\n", sn.communities().len()));
    out.push(format!(
        "last_fwd  {} sec ago\n",
        if s.last_fwd_us == 0 {
            0
        } else {
            secs(s.last_fwd_us)
        }
    ));
    out.push(format!(
        "last reg  {} sec ago\n",
        if s.last_reg_super_us == 0 {
            0
        } else {
            secs(s.last_reg_super_us)
        }
    ));
    out
}

const METHODS: [(&str, bool, &str); 9] = [
    ("communities", false, "Show current communities"),
    ("edges", false, "List current edges/peers"),
    ("help", true, "Show JSON commands"),
    ("packetstats", false, "traffic counters"),
    (
        "reload_communities",
        true,
        "Reloads communities and user's public keys",
    ),
    ("stop", true, "Gracefully exit edge"),
    ("supernodes", false, "List current supernodes"),
    ("timestamps", false, "Event timestamps"),
    ("verbose", true, "Manage verbosity level"),
];

fn json_request(sn: &mut Supernode, ctl: &mut Control, now_us: u64, text: &str) -> Vec<String> {
    let req = match mgmt::parse(text, ctl.password_hash, &METHODS) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let (kind, tag, method) = (req.kind, req.tag.as_str(), req.method);
    let secs = |us: u64| us / 1_000_000;
    let mut rows = Rows::new(tag, method);
    match method {
        "help" => return mgmt::help_rows(tag, &METHODS),
        "stop" | "verbose" => {
            let fields = mgmt::stop_or_verbose(&req, &mut ctl.keep_running, &mut ctl.verbosity)
                .unwrap_or_default();
            rows.row(&fields);
        }
        "reload_communities" => {
            if kind != "w" {
                return error(tag, "writeonly");
            }
            if ctl.list_path.is_none() {
                return error(tag, "nofile");
            }
            let ok: u32 = match reload(sn, ctl, now_us) {
                Ok(()) => 0,
                Err(_) => u32::MAX,
            };
            rows.row(&format!("\"ok\":{ok}"));
        }
        "communities" => {
            rows.row("\"community\":\"-/-\",\"purgeable\":0,\"is_federation\":1,\"ip4addr\":\"\"");
            for c in sn.communities() {
                rows.row(&format!(
                    "\"community\":{},\"purgeable\":{},\"is_federation\":0,\"ip4addr\":{}",
                    js(&c.name.text()),
                    u8::from(c.purgeable()),
                    js(&if c.subnet.prefix == 0 {
                        String::new()
                    } else {
                        c.subnet.to_string()
                    })
                ));
            }
        }
        "edges" => {
            for m in &sn.federation().members {
                rows.row(&format!(
                    "\"community\":\"-/-\",\"ip4addr\":\"\",\"purgeable\":{},\"macaddr\":{},\"sockaddr\":{},\"proto\":\"UDP\",\"desc\":\"\",\"last_seen\":{}",
                    u8::from(!m.anchor),
                    js(&if m.mac.is_null() { String::new() } else { m.mac.to_string() }),
                    js(&m.sock.to_string()),
                    secs(m.last_seen_us)
                ));
            }
            for c in sn.communities() {
                for e in c.edges.values() {
                    rows.row(&format!(
                        "\"community\":{},\"ip4addr\":{},\"purgeable\":1,\"macaddr\":{},\"sockaddr\":{},\"proto\":\"UDP\",\"desc\":{},\"last_seen\":{}",
                        js(&c.name.text()),
                        js(&e.dev_addr.to_string()),
                        js(&e.mac.to_string()),
                        js(&e.sock.to_string()),
                        js(&e.desc.text()),
                        secs(e.last_seen_us)
                    ));
                }
            }
        }
        "timestamps" => {
            let s = sn.stats();
            rows.row(&format!(
                "\"start_time\":{},\"last_fwd\":{},\"last_reg_super\":{}",
                secs(sn.start_us()),
                secs(s.last_fwd_us),
                secs(s.last_reg_super_us)
            ));
        }
        "packetstats" => {
            let s = sn.stats().clone();
            rows.row(&format!("\"type\":\"forward\",\"tx_pkt\":{}", s.forward_tx));
            rows.row(&format!(
                "\"type\":\"broadcast\",\"tx_pkt\":{}",
                s.broadcast_tx
            ));
            rows.row(&format!(
                "\"type\":\"reg_super\",\"rx_pkt\":{},\"nak\":{}",
                s.reg_super_rx, s.reg_super_nak
            ));
            rows.row(&format!("\"type\":\"errors\",\"tx_pkt\":{}", s.errors));
        }
        _ => return error(tag, "unimplemented"),
    }
    let _ = now_us;
    rows.end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::MachineConfig;
    use n2n_crypto::Xorshift128Plus;
    use n2n_crypto::pearson::pearson_hash_64;

    fn setup() -> (Supernode, Control) {
        let sn = Supernode::new(
            MachineConfig::default(),
            0,
            Box::new(Xorshift128Plus::seeded(1)),
        );
        let ctl = Control {
            password_hash: pearson_hash_64(b"n2n"),
            verbosity: 2,
            keep_running: true,
            list_path: None,
            out: Outbox::default(),
        };
        (sn, ctl)
    }

    fn req(sn: &mut Supernode, ctl: &mut Control, r: &str) -> Vec<String> {
        handle(sn, ctl, 5_000_000, r.as_bytes())
    }

    #[test]
    fn json_reads_and_writes() {
        let (mut sn, mut ctl) = setup();
        let r = req(&mut sn, &mut ctl, "r 7 packetstats");
        assert_eq!(
            r.first().map(String::as_str),
            Some("{\"_tag\":\"7\",\"_type\":\"begin\",\"cmd\":\"packetstats\"}\n")
        );
        assert_eq!(r.len(), 6);
        for line in &r {
            assert!(line.starts_with("{\"_tag\":\"7\""), "{line}");
        }
        assert!(req(&mut sn, &mut ctl, "w 1 stop")[0].contains("badauth"));
        assert!(req(&mut sn, &mut ctl, "w 1:1:wrong stop")[0].contains("badauth"));
        assert!(ctl.keep_running);
        assert!(req(&mut sn, &mut ctl, "w 1:1:n2n stop")[1].contains("\"keep_running\":0"));
        assert!(!ctl.keep_running);
        assert!(req(&mut sn, &mut ctl, "w 2:1:n2n verbose 0x4")[1].contains("\"traceLevel\":4"));
        assert!(req(&mut sn, &mut ctl, "w 2:1:n2n edges")[0].contains("readonly"));
        assert!(req(&mut sn, &mut ctl, "r 2 nosuch")[0].contains("unknowncmd"));
        assert!(req(&mut sn, &mut ctl, "r 2 supernodes")[0].contains("unimplemented"));
        assert!(req(&mut sn, &mut ctl, "r 2 reload_communities")[0].contains("writeonly"));
        assert!(req(&mut sn, &mut ctl, "w 2:1:n2n reload_communities")[0].contains("nofile"));
        assert!(req(&mut sn, &mut ctl, "x 2 edges")[0].contains("badtype"));
    }

    #[test]
    fn text_commands() {
        let (mut sn, mut ctl) = setup();
        assert!(req(&mut sn, &mut ctl, "help")[0].contains("reload_communities"));
        assert!(req(&mut sn, &mut ctl, "reload_communities")[0].starts_with("No community file"));
        let table = req(&mut sn, &mut ctl, "\n").concat();
        assert!(
            table.contains("uptime    5") && table.contains("cur_cmnts 0"),
            "{table}"
        );
    }
}
