//! Communities, their edges, and automatic address assignment (spec §7.2, §7.11).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use n2n_crypto::pearson::pearson_hash_32;
use n2n_crypto::{HeaderKey, SenderStamp};
use n2n_proto::{Auth, Community, Desc, IpSubnet, Mac, Sock};

use super::offers::Offers;
use super::users::UserAuth;

/// Header-encryption state of a community (spec §3.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderMode {
    /// A listed name before its first packet.
    Unknown,
    Plain,
    Encrypted,
}

/// A registered edge.
#[derive(Debug, Clone)]
pub struct Edge {
    pub mac: Mac,
    pub dev_addr: IpSubnet,
    pub desc: Desc,
    /// Its public socket as the supernode sees it.
    pub sock: SocketAddr,
    /// Its preferred local socket (`-e`), if it sent one.
    pub preferred: Option<Sock>,
    /// The token bound at first registration (scheme 0 when `-M` or none).
    pub auth: Auth,
    pub last_seen_us: u64,
    /// Header time-stamp state, for `-H` communities.
    pub stamp: Option<SenderStamp>,
    /// Whether `sock` has shown it receives: it registered again from the same socket (after
    /// our answer), or it is a TCP connection. n2n's wire has no nonce for an edge to echo, so
    /// this is the proof the issue asks for; until then broadcasts reach it only as one copy
    /// per public IP address (see `forward`).
    pub proven: bool,
}

/// One community and its edges.
#[derive(Debug)]
pub struct CommunityState {
    pub name: Community,
    /// Listed in community.list (fixed name): never purged, header encryption possible.
    pub listed: bool,
    pub header: HeaderMode,
    /// Header key, for listed names only (the supernode needs the name as key).
    pub key: Option<HeaderKey>,
    /// The subnet addresses are assigned from (0.0.0.0/0 if none could be found).
    pub subnet: IpSubnet,
    pub edges: HashMap<Mac, Edge>,
    /// Which edge holds which address (kept in step with `edges` by the methods below).
    by_ip: HashMap<Ipv4Addr, Mac>,
    /// How many edges sit at each public IP address (kept in step likewise).
    by_source: HashMap<std::net::IpAddr, u32>,
    /// Addresses just offered to address requests, held for their requesters (offers.rs).
    offers: Offers,
    /// User/password community (users listed): their keys and the dynamic header key.
    pub users: Option<UserAuth>,
    /// Edges registered at another supernode of the federation: which one (spec §7.8).
    pub assoc: HashMap<Mac, Association>,
    /// The public address whose datagram created it (not for listed communities).
    pub creator: Option<std::net::IpAddr>,
}

/// An edge known to be registered at another supernode.
#[derive(Debug, Clone, Copy)]
pub struct Association {
    pub supernode: SocketAddr,
    pub last_seen_us: u64,
}

impl CommunityState {
    pub fn new(name: Community, listed: bool, subnet: IpSubnet) -> Self {
        CommunityState {
            name,
            listed,
            header: if listed {
                HeaderMode::Unknown
            } else {
                HeaderMode::Plain
            },
            key: listed.then(|| HeaderKey::for_community(&name)),
            subnet,
            edges: HashMap::new(),
            by_ip: HashMap::new(),
            by_source: HashMap::new(),
            offers: Offers::default(),
            users: None,
            assoc: HashMap::new(),
            creator: None,
        }
    }

    /// The key for a header: user/password communities use the dynamic key for everything but
    /// registrations, their ACKs and NAKs (spec §4.5).
    pub fn key_for(&self, registration: bool) -> Option<&HeaderKey> {
        match &self.users {
            Some(u) if !registration => Some(&u.dynamic),
            _ => self.key.as_ref(),
        }
    }

    /// Whether a presented token matches the stored one (spec §7.2 step 7): scheme 0 stored
    /// accepts anything; in user/password communities the user must still be listed (the
    /// challenge is new each time); otherwise scheme, size and token must be identical.
    pub fn auth_ok(&self, stored: &Auth, presented: &Auth) -> bool {
        if stored.scheme == n2n_proto::auth_scheme::NONE {
            return true;
        }
        match &self.users {
            Some(users) => {
                stored.scheme == n2n_proto::auth_scheme::USER_PASSWORD
                    && users.user_of(presented).is_some()
            }
            None => stored == presented,
        }
    }

    pub fn purgeable(&self) -> bool {
        !self.listed
    }

    /// The edge owning `ip`, if any.
    pub fn edge_with_ip(&self, ip: Ipv4Addr) -> Option<Mac> {
        self.by_ip
            .get(&ip)
            .copied()
            .filter(|m| self.edges.contains_key(m))
    }

    /// Edges registered from public IP address `ip`.
    pub fn edges_from(&self, ip: std::net::IpAddr) -> u32 {
        self.by_source.get(&ip).copied().unwrap_or(0)
    }

    pub fn insert_edge(&mut self, edge: Edge) {
        if let Some(old) = self.edges.get(&edge.mac) {
            let (addr, source) = (old.dev_addr.addr, old.sock.ip());
            self.unindex(addr, edge.mac);
            self.uncount(source);
        }
        *self.by_source.entry(edge.sock.ip()).or_insert(0) += 1;
        // An address another registered edge holds stays its own: a re-registration cannot
        // take over the index (look-ups by address would go to the newcomer).
        let addr = edge.dev_addr.addr;
        if !addr.is_unspecified() && self.edge_with_ip(addr).is_none_or(|m| m == edge.mac) {
            self.by_ip.insert(addr, edge.mac);
        }
        self.edges.insert(edge.mac, edge);
    }

    pub fn remove_edge(&mut self, mac: &Mac) -> Option<Edge> {
        let e = self.edges.remove(mac)?;
        self.unindex(e.dev_addr.addr, e.mac);
        self.uncount(e.sock.ip());
        Some(e)
    }

    /// Removes edges whose last registration is older than `cutoff_us`; returns how many.
    pub fn purge(&mut self, cutoff_us: u64) -> usize {
        let stale: Vec<Mac> = self
            .edges
            .values()
            .filter(|e| e.last_seen_us < cutoff_us)
            .map(|e| e.mac)
            .collect();
        for m in &stale {
            self.remove_edge(m);
        }
        stale.len()
    }

    fn uncount(&mut self, source: std::net::IpAddr) {
        if let Some(n) = self.by_source.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                self.by_source.remove(&source);
            }
        }
    }

    fn unindex(&mut self, addr: Ipv4Addr, mac: Mac) {
        if self.by_ip.get(&addr) == Some(&mac) {
            self.by_ip.remove(&addr);
        }
    }

    /// Spec §7.11: `h = H32(desc16) & hostmask` (0 → 1, all ones → all ones − 1), then the first
    /// address no registered edge holds, searching down from `net | h`, then up. Unlike n2n,
    /// an address just offered to another requester (offers.rs) is skipped while any other
    /// is free, and with `hold` the one found is held for `to`.
    pub fn offer_address(
        &mut self,
        desc: &Desc,
        to: SocketAddr,
        now_us: u64,
        hold: bool,
    ) -> IpSubnet {
        if self.subnet.prefix == 0 || self.subnet.prefix >= 31 {
            return IpSubnet::UNSPECIFIED;
        }
        let net = u32::from(self.subnet.addr) & self.subnet.netmask();
        let hostmask = !self.subnet.netmask();
        let mut h = pearson_hash_32(&desc.0) & hostmask;
        if h == 0 {
            h = 1;
        } else if h == hostmask {
            h = hostmask - 1;
        }
        let candidate = net | h;
        let search = |skip_held: bool| {
            let down = (net + 1..=candidate).rev();
            let up = candidate + 1..net + hostmask;
            down.chain(up).map(Ipv4Addr::from).find(|a| {
                let held = skip_held && self.offers.held_for_other(*a, to, now_us);
                !self.by_ip.contains_key(a) && !held
            })
        };
        // Holds never cost an address n2n would give: with every free one held, as n2n.
        match search(true).or_else(|| search(false)) {
            Some(addr) => {
                if hold {
                    self.offers.hold(addr, to, now_us);
                }
                IpSubnet::new(addr, self.subnet.prefix)
            }
            None => IpSubnet::UNSPECIFIED,
        }
    }
}

/// The range community subnets are drawn from (`-a`, default 10.128.0.0-10.255.255.0/24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoIpRange {
    pub min: Ipv4Addr,
    pub max: Ipv4Addr,
    pub prefix: u8,
}

impl Default for AutoIpRange {
    fn default() -> Self {
        AutoIpRange {
            min: Ipv4Addr::new(10, 128, 0, 0),
            max: Ipv4Addr::new(10, 255, 255, 0),
            prefix: 24,
        }
    }
}

impl AutoIpRange {
    /// Spec §7.11: start at `H32(comm20) mod n`, search down then up for a subnet that overlaps
    /// no other community's.
    pub fn pick_subnet<'a>(
        &self,
        community: &Community,
        taken: impl Iterator<Item = &'a IpSubnet> + Clone,
    ) -> IpSubnet {
        let shift = 32 - u32::from(self.prefix);
        let (min, max) = (u32::from(self.min), u32::from(self.max));
        let n = ((max - min) >> shift) + 1;
        let start = pearson_hash_32(&community.0) % n;
        let candidate = |i: u32| IpSubnet::new(Ipv4Addr::from(min + (i << shift)), self.prefix);
        let free = |s: &IpSubnet| !taken.clone().any(|t| overlaps(s, t));
        (0..=start)
            .rev()
            .chain(start + 1..n)
            .map(candidate)
            .find(free)
            .unwrap_or(IpSubnet::UNSPECIFIED)
    }
}

/// Whether two subnets share an address.
pub fn overlaps(a: &IpSubnet, b: &IpSubnet) -> bool {
    if b.prefix == 0 || a.prefix == 0 {
        return false;
    }
    let mask = a.netmask() & b.netmask();
    u32::from(a.addr) & mask == u32::from(b.addr) & mask
}

/// Whether a registration asks for an address (spec §7.2 step 5).
pub fn wants_address(dev: &IpSubnet) -> bool {
    let a = dev.addr;
    a.is_unspecified() || a.is_broadcast() || dev.prefix == 0 || a.octets()[..2] == [169, 254]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An address request from one requester, at one moment.
    fn offer(c: &mut CommunityState, desc: &str) -> IpSubnet {
        c.offer_address(
            &Desc::from_text(desc),
            "198.18.0.9:7000".parse().expect("addr"),
            0,
            true,
        )
    }

    fn subnet_of(name: &str) -> IpSubnet {
        AutoIpRange::default().pick_subnet(&Community::new(name).expect("valid"), [].iter())
    }

    #[test]
    fn community_subnets_match_the_reference() {
        assert_eq!(subnet_of("plaincomm").to_string(), "10.200.206.0/24");
        assert_eq!(subnet_of("hecomm").to_string(), "10.181.100.0/24");
        assert_eq!(subnet_of("n2nvectors").to_string(), "10.240.116.0/24");
    }

    #[test]
    fn edge_addresses_match_the_reference() {
        let mut c = CommunityState::new(
            Community::new("plaincomm").expect("ok"),
            false,
            subnet_of("plaincomm"),
        );
        assert_eq!(offer(&mut c, "myhost").to_string(), "10.200.206.16/24");
        assert_eq!(offer(&mut c, "testhost").to_string(), "10.200.206.100/24");
        let mut v = CommunityState::new(
            Community::new("n2nvectors").expect("ok"),
            false,
            subnet_of("n2nvectors"),
        );
        assert_eq!(offer(&mut v, "edge1").addr, Ipv4Addr::new(10, 240, 116, 73));
        assert_eq!(
            offer(&mut v, "edge2").addr,
            Ipv4Addr::new(10, 240, 116, 117)
        );
        assert_eq!(offer(&mut v, "edge3").addr, Ipv4Addr::new(10, 240, 116, 55));
    }

    #[test]
    fn an_edge_cannot_take_over_another_edges_address_in_the_index() {
        let mut c = CommunityState::new(Community::new("c").expect("ok"), false, subnet_of("c"));
        let edge = |n: u8, ip: [u8; 4]| Edge {
            mac: Mac([2, 0, 0, 0, 0, n]),
            dev_addr: IpSubnet::new(ip.into(), 24),
            desc: Desc::default(),
            sock: std::net::SocketAddr::from(([198, 18, 0, n], 7000)),
            preferred: None,
            auth: n2n_proto::Auth::NONE,
            last_seen_us: 1,
            stamp: None,
            proven: true,
        };
        c.insert_edge(edge(1, [10, 0, 0, 1]));
        c.insert_edge(edge(2, [10, 0, 0, 2]));
        c.insert_edge(edge(2, [10, 0, 0, 1]));
        assert_eq!(
            c.edge_with_ip([10, 0, 0, 1].into()),
            Some(Mac([2, 0, 0, 0, 0, 1]))
        );
        // Once the holder is gone, the address is free to take.
        c.remove_edge(&Mac([2, 0, 0, 0, 0, 1]));
        c.insert_edge(edge(2, [10, 0, 0, 1]));
        assert_eq!(
            c.edge_with_ip([10, 0, 0, 1].into()),
            Some(Mac([2, 0, 0, 0, 0, 2]))
        );
    }

    #[test]
    fn holds_never_cost_an_address_and_only_holding_offers_hold() {
        let name = Community::new("small").expect("ok");
        let mut c = CommunityState::new(name, false, IpSubnet::new([10, 0, 0, 0].into(), 29));
        let from = |n: u16| SocketAddr::from(([198, 18, 0, 1], n));
        let desc = Desc::from_text("h");
        // An offer made without holding (a registered edge's) leaves the address to the next.
        let free = c.offer_address(&desc, from(1), 0, false);
        assert_eq!(c.offer_address(&desc, from(2), 0, false), free);
        // Six requesters hold all six hosts of the /29; a seventh still gets one, as in n2n.
        let held: Vec<_> = (1..=6)
            .map(|n| c.offer_address(&desc, from(n), 0, true))
            .collect();
        assert_eq!(
            held.iter().collect::<std::collections::HashSet<_>>().len(),
            6
        );
        assert!(
            !c.offer_address(&desc, from(7), 0, true)
                .addr
                .is_unspecified()
        );
    }

    #[test]
    fn taken_subnets_and_addresses_are_skipped() {
        let name = Community::new("plaincomm").expect("ok");
        let taken = [IpSubnet::new(Ipv4Addr::new(10, 200, 206, 0), 24)];
        assert_eq!(
            AutoIpRange::default()
                .pick_subnet(&name, taken.iter())
                .to_string(),
            "10.200.205.0/24"
        );
        let mut c = CommunityState::new(name, false, subnet_of("plaincomm"));
        let first = offer(&mut c, "myhost");
        c.insert_edge(Edge {
            mac: Mac([2, 0, 0, 0, 0, 1]),
            dev_addr: first,
            desc: Desc::from_text("myhost"),
            sock: "127.0.0.1:1".parse().expect("addr"),
            preferred: None,
            auth: Auth::NONE,
            last_seen_us: 0,
            stamp: None,
            proven: false,
        });
        assert_eq!(offer(&mut c, "myhost").to_string(), "10.200.206.15/24");
    }
}
