//! `-R` traffic filter rules with n2n's syntax and semantics (spec §10.4): applied to frames
//! read from the TAP before they are sent and to received frames before they are written.
//! Only IPv4 TCP, UDP and ICMP are subject to rules; everything else passes.

use std::net::Ipv4Addr;

/// One endpoint of a rule: a network (n2n compares the rule's address, unmasked, with the
/// packet's masked address) and a port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Endpoint {
    net: u32,
    bits: u8,
    ports: (u16, u16),
}

/// What a rule says of one protocol: not configured, accept (`+`) or drop (`-`).
type Verdict = Option<bool>;

/// `SRC,DST[,PROTO…]`, e.g. `192.168.1.0/24:[1000,2000],10.0.0.1:22,TCP+,ICMP-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    src: Endpoint,
    dst: Endpoint,
    tcp: Verdict,
    udp: Verdict,
    icmp: Verdict,
}

/// The configured rules; empty means no filtering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules(Vec<Rule>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
    Icmp,
}

/// The fields of a frame rules look at.
struct Packet {
    proto: Proto,
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
}

impl Rules {
    pub fn new(rules: Vec<Rule>) -> Self {
        Rules(rules)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a frame may pass: the rule with the highest score that configures its protocol
    /// decides (score: both prefix lengths plus one each; the first on a tie); no rule, pass.
    pub fn allows(&self, frame: &[u8]) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(p) = packet(frame) else { return true };
        let mut best: Option<(u32, bool)> = None;
        for r in &self.0 {
            let Some(verdict) = (match p.proto {
                Proto::Tcp => r.tcp,
                Proto::Udp => r.udp,
                Proto::Icmp => r.icmp,
            }) else {
                continue;
            };
            let ports_ok = p.proto == Proto::Icmp
                || (in_range(p.sport, r.src.ports) && in_range(p.dport, r.dst.ports));
            if !ports_ok {
                continue;
            }
            let (Some(s), Some(d)) = (score(&r.src, p.src), score(&r.dst, p.dst)) else {
                continue;
            };
            if best.is_none_or(|(b, _)| s + d > b) {
                best = Some((s + d, verdict));
            }
        }
        best.is_none_or(|(_, accept)| accept)
    }
}

fn in_range(port: u16, (from, to): (u16, u16)) -> bool {
    from <= port && port <= to
}

/// n2n's `march_cidr_and_address`: prefix length + 1 if `ip` masked equals the rule's network.
fn score(e: &Endpoint, ip: u32) -> Option<u32> {
    let mask = if e.bits == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(e.bits))
    };
    (ip & mask == e.net).then_some(u32::from(e.bits) + 1)
}

/// The IPv4 protocol, addresses and ports of an Ethernet frame, if rules apply to it.
fn packet(frame: &[u8]) -> Option<Packet> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let addr = |at: usize| u32::from_be_bytes([ip[at], ip[at + 1], ip[at + 2], ip[at + 3]]);
    let (src, dst) = (addr(12), addr(16));
    let proto = match ip[9] {
        1 => Proto::Icmp,
        6 => Proto::Tcp,
        17 => Proto::Udp,
        _ => return None,
    };
    let l4 = ip.get(usize::from(ip[0] & 0x0f) * 4..).unwrap_or(&[]);
    let port = |at: usize| {
        l4.get(at..at + 2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
    };
    Some(Packet {
        proto,
        src,
        dst,
        sport: port(0),
        dport: port(2),
    })
}

/// Parses one `-R` rule; the error says what is wrong (the caller names the rule).
pub fn parse_rule(text: &str) -> Result<Rule, String> {
    let parts = split_top(text);
    if parts.len() < 2 {
        return Err("expected SRC,DST[,PROTO…]".into());
    }
    let mut rule = Rule {
        src: endpoint(parts[0])?,
        dst: endpoint(parts[1])?,
        tcp: None,
        udp: None,
        icmp: None,
    };
    for p in &parts[2..] {
        let (slot, sign) = match p.split_at(p.len().saturating_sub(1)) {
            ("TCP", s) => (&mut rule.tcp, s),
            ("UDP", s) => (&mut rule.udp, s),
            ("ICMP", s) => (&mut rule.icmp, s),
            _ => {
                return Err(format!(
                    "unknown protocol '{p}' (TCP+, TCP-, UDP+, UDP-, ICMP+, ICMP-)"
                ));
            }
        };
        *slot = match sign {
            "+" => Some(true),
            "-" => Some(false),
            _ => return Err(format!("'{p}' needs + or -")),
        };
    }
    Ok(rule)
}

/// Splits at commas outside `[…]`.
fn split_top(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// `a.b.c.d[/len][:port|:[from,to]]`.
fn endpoint(text: &str) -> Result<Endpoint, String> {
    let (addr_part, ports) = match text.split_once(':') {
        Some((a, p)) => (a, port_range(p)?),
        None => (text, (0, u16::MAX)),
    };
    let (ip, bits) = match addr_part.split_once('/') {
        Some((ip, b)) => {
            let bits: u8 = b
                .parse()
                .ok()
                .filter(|b| *b <= 32)
                .ok_or_else(|| format!("bad prefix length '{b}'"))?;
            (ip, bits)
        }
        None => (addr_part, 32),
    };
    let ip: Ipv4Addr = ip.parse().map_err(|_| format!("bad IPv4 address '{ip}'"))?;
    Ok(Endpoint {
        net: u32::from(ip),
        bits,
        ports,
    })
}

fn port_range(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("bad port '{text}' (n or [from,to])");
    let num = |s: &str| s.parse::<u16>().map_err(|_| bad());
    match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(inner) => {
            let (a, b) = inner.split_once(',').ok_or_else(bad)?;
            Ok((num(a)?, num(b)?))
        }
        None => {
            let p = num(text)?;
            Ok((p, p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4 frame with protocol `proto` and, for TCP/UDP, the ports.
    fn frame(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 9] = proto;
        f[14 + 12..14 + 16].copy_from_slice(&src);
        f[14 + 16..14 + 20].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    fn rules(texts: &[&str]) -> Rules {
        Rules::new(
            texts
                .iter()
                .map(|t| parse_rule(t).expect("valid"))
                .collect(),
        )
    }

    #[test]
    fn the_reference_example_allows_only_icmp_inside_the_subnet() {
        // n2n's documented example.
        let r = rules(&[
            "0.0.0.0/0,0.0.0.0/0,TCP-,UDP-,ICMP-",
            "192.168.100.0/24,192.168.100.0/24,ICMP+",
        ]);
        let inside = ([192, 168, 100, 1], [192, 168, 100, 2]);
        assert!(r.allows(&frame(inside.0, inside.1, 1, 0, 0)));
        assert!(!r.allows(&frame(inside.0, inside.1, 6, 1000, 22)));
        assert!(!r.allows(&frame(inside.0, inside.1, 17, 1000, 53)));
        assert!(!r.allows(&frame([10, 0, 0, 1], inside.1, 1, 0, 0)));
        // Not TCP/UDP/ICMP: never filtered (IGMP, ARP).
        assert!(r.allows(&frame(inside.0, inside.1, 2, 0, 0)));
        let mut arp = frame(inside.0, inside.1, 6, 0, 0);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(r.allows(&arp));
    }

    #[test]
    fn ports_prefixes_and_ties() {
        let r = rules(&[
            "10.0.0.0/8:[1000,2000],10.0.0.5:22,TCP-",
            "10.0.0.0/8,10.0.0.0/8,TCP+",
        ]);
        assert!(!r.allows(&frame([10, 1, 1, 1], [10, 0, 0, 5], 6, 1500, 22)));
        assert!(
            r.allows(&frame([10, 1, 1, 1], [10, 0, 0, 5], 6, 999, 22)),
            "port outside"
        );
        assert!(
            r.allows(&frame([10, 1, 1, 1], [10, 0, 0, 5], 17, 1500, 22)),
            "UDP not configured"
        );
        // Equal scores: the first rule wins.
        let r = rules(&["1.2.3.4,5.6.7.8,UDP-", "1.2.3.4,5.6.7.8,UDP+"]);
        assert!(!r.allows(&frame([1, 2, 3, 4], [5, 6, 7, 8], 17, 1, 2)));
        // A rule without protocols never matches.
        assert!(rules(&["0.0.0.0/0,0.0.0.0/0"]).allows(&frame(
            [1, 2, 3, 4],
            [5, 6, 7, 8],
            17,
            1,
            2
        )));
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        for (bad, why) in [
            ("10.0.0.1", "expected"),
            ("10.0.0.300,1.2.3.4,TCP+", "address"),
            ("10.0.0.0/33,1.2.3.4,TCP+", "prefix"),
            ("1.2.3.4:[5,x],1.2.3.4,TCP+", "port"),
            ("1.2.3.4,1.2.3.4,SCTP+", "protocol"),
            ("1.2.3.4,1.2.3.4,TCP", "TCP+"),
        ] {
            let e = parse_rule(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn hostile_frames_never_panic() {
        let r = rules(&["0.0.0.0/0,0.0.0.0/0,TCP-,UDP-,ICMP-"]);
        let base = frame([1, 1, 1, 1], [2, 2, 2, 2], 6, 1, 2);
        for len in 0..base.len() {
            let _ = r.allows(&base[..len]);
        }
        let mut f = base.clone();
        f[14] = 0x4f; // an IHL past the end
        let _ = r.allows(&f);
    }
}
