//! A multi-node simulator (STYLE.md §11): the real edge and supernode machines on a virtual
//! network with virtual time, latency, seeded loss and NAT behaviours. Frames are not
//! encrypted here; the simulator plays the data path's part (direct if the edge has a route,
//! else relayed, with the hints the real data path gives the machine).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use n2n_crypto::{RandomSource, Xorshift128Plus};
use n2n_edge::datapath::SharedStamps;
use n2n_edge::machine::{Action, Edge, EdgeMachineConfig, PeerHint};
use n2n_proto::{Community, Datagram, Desc, IpSubnet, Mac, Message};
use n2n_supernode::machine::{MachineConfig, Outbox, Supernode};

pub use crate::Nat;

/// Index of an edge in the simulation.
pub type EdgeId = usize;

const SN_ADDR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 7654);
const T0: u64 = 1_800_000_000_000_000;

struct SimEdge {
    machine: Edge,
    private: SocketAddrV4,
    public_ip: Ipv4Addr,
    nat: Nat,
    /// NAT mappings: (private port, remote) → public port. Endpoint-independent NATs ignore
    /// the remote (one mapping per private port).
    mappings: HashMap<(u16, Option<SocketAddrV4>), u16>,
    /// Remote endpoints this NAT has sent to (filtering).
    contacted: Vec<SocketAddrV4>,
    next_port: u16,
    up: bool,
}

/// Where the frames of a `send_frame` went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FrameCounts {
    pub direct: u64,
    pub relayed: u64,
}

/// The virtual network.
pub struct SimNet {
    now_us: u64,
    rng: Xorshift128Plus,
    loss: f64,
    latency_us: u64,
    sn: Option<Supernode>,
    edges: Vec<SimEdge>,
    /// (deliver at, sequence) → (from public, to public, bytes)
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    in_flight: HashMap<u64, (SocketAddrV4, SocketAddrV4, Vec<u8>)>,
    seq: u64,
    pub frames: FrameCounts,
}

impl std::fmt::Debug for SimNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SimNet {{ now: {}, edges: {} }}",
            self.now_us,
            self.edges.len()
        )
    }
}

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
    }
}

impl SimNet {
    /// A network with a supernode, 20 ms one-way latency and no loss.
    pub fn seeded(seed: u64) -> Self {
        let sn = Supernode::new(
            MachineConfig::default(),
            T0,
            Box::new(Xorshift128Plus::seeded(seed)),
        );
        SimNet {
            now_us: T0,
            rng: Xorshift128Plus::seeded(seed ^ 0x5151),
            loss: 0.0,
            latency_us: 20_000,
            sn: Some(sn),
            edges: Vec::new(),
            queue: BinaryHeap::new(),
            in_flight: HashMap::new(),
            seq: 0,
            frames: FrameCounts::default(),
        }
    }

    /// Drops each datagram with this probability (seeded).
    pub fn set_loss(&mut self, loss: f64) {
        self.loss = loss;
    }

    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Adds an edge behind its own NAT, registering every `interval_s` seconds.
    pub fn add_edge(&mut self, nat: Nat, interval_s: u64) -> EdgeId {
        let id = self.edges.len();
        let n = id as u8 + 1;
        let mac = Mac([2, 0, 0, 0, 0, n]);
        let cfg = EdgeMachineConfig {
            community: Community::new("sim").expect("valid"),
            mac,
            desc: Desc::from_text(&format!("edge{n}")),
            dev_addr: Some(IpSubnet::new(Ipv4Addr::new(10, 99, 0, n), 24)),
            supernodes: vec![SocketAddr::V4(SN_ADDR)],
            register_interval_us: interval_s * 1_000_000,
            p2p: true,
            header_key: None,
            preferred: None,
            lan_discovery: false,
            register_ttl: 0,
            selection: Default::default(),
        };
        let machine = Edge::new(
            cfg,
            Box::new(Xorshift128Plus::seeded(u64::from(n))),
            Arc::new(SharedStamps::default()),
            self.now_us,
        );
        self.edges.push(SimEdge {
            machine,
            private: SocketAddrV4::new(Ipv4Addr::new(10, 1, n, 2), 40000),
            public_ip: Ipv4Addr::new(198, 18, n, 2),
            nat,
            mappings: HashMap::new(),
            contacted: Vec::new(),
            next_port: 20000,
            up: true,
        });
        self.pump_edge(id);
        id
    }

    pub fn mac_of(&self, id: EdgeId) -> Mac {
        self.edges[id].machine.mac()
    }

    pub fn edge(&self, id: EdgeId) -> &Edge {
        &self.edges[id].machine
    }

    /// Stops or restarts the supernode (a restart has lost all its state).
    pub fn set_supernode_up(&mut self, up: bool) {
        self.sn = up.then(|| {
            Supernode::new(
                MachineConfig::default(),
                self.now_us,
                Box::new(Xorshift128Plus::seeded(self.now_us)),
            )
        });
    }

    pub fn supernode_edges(&self) -> usize {
        self.sn.as_ref().map_or(0, |s| s.edge_count())
    }

    /// The public socket an edge's datagram to `remote` leaves with (creating the mapping).
    fn outbound(&mut self, id: EdgeId, remote: SocketAddrV4) -> SocketAddrV4 {
        let e = &mut self.edges[id];
        if e.nat == Nat::None {
            return SocketAddrV4::new(e.public_ip, e.private.port());
        }
        let key = (
            e.private.port(),
            if e.nat == Nat::Symmetric {
                Some(remote)
            } else {
                None
            },
        );
        let port = match e.mappings.get(&key) {
            Some(p) => *p,
            None => {
                e.next_port += 1;
                let p = if e.nat == Nat::HomeRouter {
                    e.private.port()
                } else {
                    e.next_port
                };
                e.mappings.insert(key, p);
                p
            }
        };
        if !e.contacted.contains(&remote) {
            e.contacted.push(remote);
        }
        SocketAddrV4::new(e.public_ip, port)
    }

    /// Whether a datagram from `remote` to `public` passes the edge's NAT.
    fn inbound(&self, id: EdgeId, remote: SocketAddrV4, public: SocketAddrV4) -> bool {
        let e = &self.edges[id];
        match e.nat {
            Nat::None => true,
            Nat::HomeRouter => {
                e.mappings.values().any(|p| *p == public.port()) && e.contacted.contains(&remote)
            }
            Nat::Symmetric => {
                e.mappings.get(&(e.private.port(), Some(remote))) == Some(&public.port())
            }
        }
    }

    fn send(&mut self, from: SocketAddrV4, to: SocketAddrV4, data: Vec<u8>) {
        let drop = self.loss > 0.0 && (self.rng.next_u64() % 1_000_000) as f64 / 1e6 < self.loss;
        if drop {
            return;
        }
        self.seq += 1;
        self.queue
            .push(Reverse((self.now_us + self.latency_us, self.seq)));
        self.in_flight.insert(self.seq, (from, to, data));
    }

    fn pump_edge(&mut self, id: EdgeId) {
        while let Some(a) = self.edges[id].machine.poll_action() {
            if let Action::Transmit { dst, data } = a {
                if !self.edges[id].up {
                    continue;
                }
                let remote = v4(dst);
                let src = self.outbound(id, remote);
                self.send(src, remote, data);
            }
        }
    }

    fn deliver(&mut self, from: SocketAddrV4, to: SocketAddrV4, mut data: Vec<u8>) {
        if to == SN_ADDR {
            let Some(sn) = self.sn.as_mut() else { return };
            let mut out = Outbox::default();
            sn.handle_datagram(self.now_us, SocketAddr::V4(from), &mut data, &mut out);
            let sends: Vec<(SocketAddrV4, Vec<u8>)> = out
                .transmits()
                .iter()
                .flat_map(|t| t.dests.iter().map(|d| (v4(*d), t.data.clone())))
                .collect();
            for (dst, bytes) in sends {
                self.send(SN_ADDR, dst, bytes);
            }
            return;
        }
        let Some(id) = self.edges.iter().position(|e| e.public_ip == *to.ip()) else {
            return;
        };
        if !self.edges[id].up || !self.inbound(id, from, to) {
            return;
        }
        let Ok((d, _)) = Datagram::decode(&data) else {
            return;
        };
        if let Message::Packet(p) = d.msg {
            // The simulated data path: a relayed frame tells the receiver the sender's socket.
            if let Some(sock) = p.sock {
                self.edges[id].machine.handle_hint(
                    self.now_us,
                    PeerHint::Relayed {
                        mac: p.src_mac,
                        sock: SocketAddr::from(sock),
                    },
                );
            }
        } else {
            self.edges[id]
                .machine
                .handle_control(self.now_us, SocketAddr::V4(from), d, None);
        }
        self.pump_edge(id);
    }

    /// Edge `a` sends one frame to edge `b`: directly if `a` has a fresh route, else via the
    /// supernode (as a PACKET the supernode relays), with the data path's hints.
    pub fn send_frame(&mut self, a: EdgeId, b: EdgeId) {
        let (mac_a, mac_b) = (self.mac_of(a), self.mac_of(b));
        let now = self.now_us;
        match self.edges[a].machine.route(&mac_b, now) {
            Some(to) => {
                self.frames.direct += 1;
                let src = self.outbound(a, v4(to));
                let public_b = SocketAddrV4::new(self.edges[b].public_ip, 0);
                if to.ip() == std::net::IpAddr::V4(*public_b.ip()) && self.inbound(b, src, v4(to)) {
                    let from = SocketAddr::V4(src);
                    self.edges[b]
                        .machine
                        .handle_hint(now, PeerHint::Direct { mac: mac_a, from });
                    // A direct frame refreshes the receiver's liveness of the sender.
                    if let Some((_, k)) = self.edges[b].machine.known().find(|(m, _)| **m == mac_a)
                    {
                        k.touch(now);
                    }
                    self.pump_edge(b);
                }
            }
            None => {
                self.frames.relayed += 1;
                self.edges[a]
                    .machine
                    .handle_hint(now, PeerHint::Need(mac_b));
                self.pump_edge(a);
                let packet = Datagram::new(
                    Community::new("sim").expect("valid"),
                    n2n_proto::Flags::EMPTY,
                    Message::Packet(n2n_proto::msg::PacketHeader {
                        src_mac: mac_a,
                        dst_mac: mac_b,
                        sock: None,
                        compression: 1,
                        transform: 1,
                    }),
                )
                .to_vec();
                let src = self.outbound(a, SN_ADDR);
                self.send(src, SN_ADDR, packet);
            }
        }
    }

    /// Advances virtual time, delivering datagrams and running every timer.
    pub fn run_for(&mut self, dur_us: u64) {
        let end = self.now_us + dur_us;
        loop {
            let next_packet = self
                .queue
                .peek()
                .map(|Reverse((t, _))| *t)
                .unwrap_or(u64::MAX);
            let next_timer = self
                .edges
                .iter()
                .map(|e| e.machine.poll_timeout())
                .min()
                .unwrap_or(u64::MAX);
            let next_sn = self.sn.as_ref().map_or(u64::MAX, |s| s.poll_timeout());
            let next = next_packet.min(next_timer).min(next_sn).max(self.now_us);
            if next > end {
                self.now_us = end;
                return;
            }
            self.now_us = next;
            if next_packet <= next
                && let Some(Reverse((_, seq))) = self.queue.pop()
                && let Some((from, to, data)) = self.in_flight.remove(&seq)
            {
                self.deliver(from, to, data);
                continue;
            }
            if let Some(sn) = self.sn.as_mut() {
                let mut out = Outbox::default();
                sn.handle_timeout(next, &mut out);
            }
            for id in 0..self.edges.len() {
                if self.edges[id].machine.poll_timeout() <= next {
                    self.edges[id].machine.handle_timeout(next);
                    self.pump_edge(id);
                }
            }
        }
    }
}
