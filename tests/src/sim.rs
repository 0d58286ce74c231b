//! A multi-node simulator (STYLE.md §11): the real edge and supernode machines on a virtual
//! network with virtual time, latency, seeded loss and NAT behaviours. Several supernodes form
//! a federation (spec §7.9). Every edge's data plane is the production [`Tunnel`] (null
//! transform, no compression): it decides direct or relayed, gives the machine its hints and
//! opens what arrives, so the route decisions here are production's; the simulator counts the
//! frames that reach their edge.
//!
//! Sized for 150 000 edges: edges are found by public IP in a map, datagrams and timers wait
//! in binary heaps, and each NAT keeps a few bounded entries.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use n2n_crypto::compress::Codec;
use n2n_crypto::{RandomSource, Xorshift128Plus};
use n2n_crypto::{StampGenerator, Transform};
use n2n_edge::machine::{Action, Edge, EdgeMachineConfig};
use n2n_edge::tunnel::{
    Decap, Encap, FRAME_AT, Halves, Now, Path, Slot, Tunnel, TunnelConfig, View,
};
use n2n_proto::msg::compression;
use n2n_proto::{Community, Desc, IpSubnet, Mac};
use n2n_supernode::machine::{MachineConfig, Outbox, Supernode, federation_community};

pub use crate::Nat;

/// Index of an edge in the simulation.
pub type EdgeId = usize;

const T0: u64 = 1_800_000_000_000_000;
const SN_PORT: u16 = 7654;
/// Every edge's private UDP port (each edge sits behind its own NAT).
const PRIVATE_PORT: u16 = 40000;
/// NAT table entries per edge, oldest evicted first (a real NAT expires them).
const MAX_NAT_ENTRIES: usize = 64;
/// The simulated supernodes' registry bound: a whole 150 000-edge federation fits in one.
const SN_MAX_EDGES: usize = 1_000_000;
/// Public addresses come from 100.64.0.0/10, overlay addresses from 10.0.0.0/8.
const MAX_EDGES: usize = (1 << 22) - 2;

struct SimEdge {
    machine: Edge,
    tunnel: Tunnel,
    public_ip: Ipv4Addr,
    nat: Nat,
    /// NAT mappings, oldest first: remote (symmetric NATs only) → public port.
    mappings: Vec<(Option<SocketAddrV4>, u16)>,
    /// Remote endpoints this NAT has sent to (filtering), oldest first.
    contacted: Vec<SocketAddrV4>,
    next_port: u16,
    /// The due time of this edge's live entry in the timer heap (`u64::MAX`: none).
    timer_at: u64,
    /// Frames addressed to this edge that reached it.
    rx_frames: u64,
}

struct SimSupernode {
    addr: SocketAddrV4,
    /// `None` while it is down.
    machine: Option<Supernode>,
    /// Its `-l`, added again when it restarts.
    anchor: Option<SocketAddrV4>,
}

/// Where the frames of `send_frame` went, and how many reached their edge.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FrameCounts {
    pub direct: u64,
    pub relayed: u64,
    pub delivered: u64,
    /// Refused by the sender's Tunnel (e.g. not registered yet).
    pub refused: u64,
}

/// A datagram on the wire, ordered by arrival time, then by sending order.
struct InFlight {
    at: u64,
    seq: u64,
    from: SocketAddrV4,
    to: SocketAddrV4,
    data: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The virtual network.
pub struct SimNet {
    seed: u64,
    now_us: u64,
    rng: Xorshift128Plus,
    loss: f64,
    latency_us: u64,
    community: Community,
    sns: Vec<SimSupernode>,
    edges: Vec<SimEdge>,
    by_ip: HashMap<Ipv4Addr, EdgeId>,
    queue: BinaryHeap<Reverse<InFlight>>,
    /// Edge timers: (due, edge). Entries whose due time is no longer the edge's are stale.
    timers: BinaryHeap<Reverse<(u64, u32)>>,
    seq: u64,
    /// Reused for every supernode call.
    outbox: Outbox,
    /// Reused for every frame sent and every decompressed frame received.
    slot: Slot,
    frame_out: Vec<u8>,
    pub frames: FrameCounts,
}

impl std::fmt::Debug for SimNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SimNet {{ now: {}, supernodes: {}, edges: {} }}",
            self.now_us,
            self.sns.len(),
            self.edges.len()
        )
    }
}

/// An edge's data plane in the simulation: the production Tunnel with the null transform.
fn sim_tunnel(
    community: Community,
    mac: Mac,
    interval_s: u64,
    seed: u64,
    stamps: Arc<StampGenerator>,
) -> Tunnel {
    let codec = || Codec::new(compression::NONE).expect("no compression");
    let cfg = TunnelConfig {
        community,
        own_mac: mac,
        transform: n2n_crypto::transform::id::NULL,
        compression: compression::NONE,
        header_key: None,
        multicast: false,
        routing: false,
        p2p_window_us: interval_s * 1_000_000 / 2,
        user_auth: false,
        filter: Default::default(),
    };
    let halves = Halves {
        seal: Transform::Null,
        open: Transform::Null,
        seal_codec: codec(),
        open_codec: codec(),
        seed,
    };
    Tunnel::new(cfg, halves, stamps)
}

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
    }
}

fn offset(base: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + n)
}

/// Finds the entry `find` matches in a NAT table, else adds `make()`; either way it becomes
/// the newest, and the oldest goes when the table is full (a real NAT expires idle entries).
fn refresh<T: Copy>(v: &mut Vec<T>, find: impl Fn(&T) -> bool, make: impl FnOnce() -> T) -> T {
    let item = match v.iter().position(find) {
        Some(i) => v.remove(i),
        None => {
            if v.len() >= MAX_NAT_ENTRIES {
                v.remove(0);
            }
            make()
        }
    };
    v.push(item);
    item
}

impl SimNet {
    /// A network with one supernode, 20 ms one-way latency and no loss.
    pub fn seeded(seed: u64) -> Self {
        Self::federation(seed, 1)
    }

    /// A network with `n` supernodes of one federation, each started with `-l` naming the
    /// one before it (a chain, so that losing any one leaves the others connected).
    pub fn federation(seed: u64, n: usize) -> Self {
        assert!((1..=200).contains(&n), "1 to 200 supernodes");
        let mut net = SimNet {
            seed,
            now_us: T0,
            rng: Xorshift128Plus::seeded(seed ^ 0x5151),
            loss: 0.0,
            latency_us: 20_000,
            community: Community::new("sim").expect("valid"),
            sns: Vec::new(),
            edges: Vec::new(),
            by_ip: HashMap::new(),
            queue: BinaryHeap::new(),
            timers: BinaryHeap::new(),
            seq: 0,
            outbox: Outbox::default(),
            slot: Slot::default(),
            frame_out: vec![0u8; 2048],
            frames: FrameCounts::default(),
        };
        for i in 0..n {
            let addr = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2 + i as u8), SN_PORT);
            let anchor = i.checked_sub(1).map(|p| net.sns[p].addr);
            net.sns.push(SimSupernode {
                addr,
                machine: None,
                anchor,
            });
            net.start_supernode(i);
        }
        net
    }

    /// Drops each datagram with this probability (seeded).
    pub fn set_loss(&mut self, loss: f64) {
        self.loss = loss;
    }

    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Virtual time when the network was made.
    pub fn start_us(&self) -> u64 {
        T0
    }

    /// Adds an edge behind its own NAT, configured with supernode 0 only.
    pub fn add_edge(&mut self, nat: Nat, interval_s: u64) -> EdgeId {
        self.add_edge_with(nat, interval_s, &[0])
    }

    /// Adds an edge behind its own NAT, registering every `interval_s` seconds, configured
    /// with these supernodes in this order. Its MAC, public and overlay addresses come from
    /// its id, so they stay unique however many edges there are.
    pub fn add_edge_with(&mut self, nat: Nat, interval_s: u64, supernodes: &[usize]) -> EdgeId {
        let id = self.edges.len();
        assert!(id < MAX_EDGES, "at most {MAX_EDGES} edges");
        let n = id as u32 + 1;
        let b = n.to_be_bytes();
        let cfg = EdgeMachineConfig {
            desc: Desc::from_text(&format!("edge{id}")),
            dev_addr: Some(IpSubnet::new(offset(Ipv4Addr::new(10, 0, 0, 0), n), 8)),
            register_interval_us: interval_s * 1_000_000,
            ..EdgeMachineConfig::new(
                self.community,
                Mac([2, 0, b[0], b[1], b[2], b[3]]),
                supernodes
                    .iter()
                    .map(|&i| SocketAddr::V4(self.sns[i].addr))
                    .collect(),
            )
        };
        let seed = self.seed ^ u64::from(n).wrapping_mul(0x9E37_79B9);
        let stamps = Arc::new(StampGenerator::default());
        let tunnel = sim_tunnel(
            self.community,
            cfg.mac,
            interval_s,
            seed,
            Arc::clone(&stamps),
        );
        let machine = Edge::new(
            cfg,
            Box::new(Xorshift128Plus::seeded(seed)),
            stamps,
            self.now_us,
        );
        let public_ip = offset(Ipv4Addr::new(100, 64, 0, 0), n);
        self.by_ip.insert(public_ip, id);
        self.edges.push(SimEdge {
            machine,
            tunnel,
            public_ip,
            nat,
            mappings: Vec::new(),
            contacted: Vec::new(),
            next_port: 20000,
            timer_at: u64::MAX,
            rx_frames: 0,
        });
        self.pump_edge(id);
        id
    }

    pub fn num_edges(&self) -> usize {
        self.edges.len()
    }

    pub fn num_supernodes(&self) -> usize {
        self.sns.len()
    }

    pub fn mac_of(&self, id: EdgeId) -> Mac {
        self.edges[id].machine.mac()
    }

    pub fn edge(&self, id: EdgeId) -> &Edge {
        &self.edges[id].machine
    }

    /// Frames addressed to edge `id` that reached it (direct or relayed).
    /// Where edge `a`'s Tunnel would send a frame for `b` directly now (`None`: relayed).
    pub fn direct_route(&self, a: EdgeId, b: EdgeId) -> Option<SocketAddr> {
        let mac = self.mac_of(b);
        self.edges[a].tunnel.direct_path(Now::at(self.now_us), &mac)
    }

    pub fn delivered_to(&self, id: EdgeId) -> u64 {
        self.edges[id].rx_frames
    }

    /// Supernode `i`, if it is up.
    pub fn supernode(&self, i: usize) -> Option<&Supernode> {
        self.sns[i].machine.as_ref()
    }

    pub fn supernode_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::V4(self.sns[i].addr)
    }

    /// Which supernode edge `id` uses now.
    pub fn supernode_of(&self, id: EdgeId) -> Option<usize> {
        let addr = v4(self.edges[id].machine.supernode());
        self.sns.iter().position(|s| s.addr == addr)
    }

    /// Edges registered at supernode `i` (0 while it is down).
    pub fn edge_count(&self, i: usize) -> usize {
        self.supernode(i).map_or(0, |s| s.edge_count())
    }

    /// Edges registered at all supernodes that are up.
    pub fn supernode_edges(&self) -> usize {
        (0..self.sns.len()).map(|i| self.edge_count(i)).sum()
    }

    /// Stops supernode `i` (it then drops everything) or starts it again with no state but
    /// its `-l`; starting one that is up changes nothing.
    pub fn set_supernode_up(&mut self, i: usize, up: bool) {
        match (up, self.sns[i].machine.is_some()) {
            (false, _) => self.sns[i].machine = None,
            (true, false) => self.start_supernode(i),
            (true, true) => {}
        }
    }

    fn start_supernode(&mut self, i: usize) {
        let s = &self.sns[i];
        let cfg = MachineConfig {
            mac: Mac([2, 0, 0, 0, 0xfe, i as u8]),
            max_edges: SN_MAX_EDGES,
            federation: federation_community("simfed"),
            listen: Some(SocketAddr::V4(s.addr)),
            ..MachineConfig::default()
        };
        let rng = Xorshift128Plus::seeded(self.seed ^ self.now_us ^ ((i as u64) << 48));
        let mut sn = Supernode::new(cfg, self.now_us, Box::new(rng));
        let (addr, anchor) = (s.addr, s.anchor);
        if let Some(anchor) = anchor {
            sn.add_anchor(self.now_us, SocketAddr::V4(anchor), &mut self.outbox);
        }
        self.sns[i].machine = Some(sn);
        self.flush_outbox(addr);
    }

    /// Sends what the last supernode call put in the outbox.
    fn flush_outbox(&mut self, from: SocketAddrV4) {
        let out = std::mem::take(&mut self.outbox);
        for t in out.transmits() {
            for d in &t.dests {
                self.send(from, v4(*d), t.data.clone());
            }
        }
        self.outbox = out;
    }

    /// The public socket an edge's datagram to `remote` leaves with (creating the mapping).
    fn outbound(&mut self, id: EdgeId, remote: SocketAddrV4) -> SocketAddrV4 {
        let e = &mut self.edges[id];
        if e.nat == Nat::None {
            return SocketAddrV4::new(e.public_ip, PRIVATE_PORT);
        }
        let key = (e.nat == Nat::Symmetric).then_some(remote);
        let (nat, next_port) = (e.nat, &mut e.next_port);
        let (_, port) = refresh(
            &mut e.mappings,
            |m| m.0 == key,
            || match nat {
                Nat::Symmetric => {
                    *next_port = next_port.wrapping_add(1).max(20000);
                    (key, *next_port)
                }
                _ => (key, PRIVATE_PORT),
            },
        );
        refresh(&mut e.contacted, |c| *c == remote, || remote);
        SocketAddrV4::new(e.public_ip, port)
    }

    /// Whether a datagram from `remote` to `public` passes the edge's NAT.
    fn inbound(&self, id: EdgeId, remote: SocketAddrV4, public: SocketAddrV4) -> bool {
        let e = &self.edges[id];
        match e.nat {
            Nat::None => true,
            Nat::HomeRouter => {
                e.mappings.iter().any(|m| m.1 == public.port()) && e.contacted.contains(&remote)
            }
            Nat::Symmetric => e
                .mappings
                .iter()
                .any(|m| m.0 == Some(remote) && m.1 == public.port()),
        }
    }

    fn send(&mut self, from: SocketAddrV4, to: SocketAddrV4, data: Vec<u8>) {
        let drop = self.loss > 0.0 && (self.rng.next_u64() % 1_000_000) as f64 / 1e6 < self.loss;
        if drop {
            return;
        }
        self.seq += 1;
        self.queue.push(Reverse(InFlight {
            at: self.now_us + self.latency_us,
            seq: self.seq,
            from,
            to,
            data,
        }));
    }

    /// Performs the edge's queued actions and (re)arms its timer.
    fn pump_edge(&mut self, id: EdgeId) {
        while let Some(a) = self.edges[id].machine.poll_action() {
            match a {
                Action::Transmit { dst, data } => {
                    let remote = v4(dst);
                    let src = self.outbound(id, remote);
                    self.send(src, remote, data);
                }
                Action::RoutesChanged => {
                    let e = &self.edges[id];
                    e.tunnel.set_view(View::of(&e.machine));
                }
                _ => {}
            }
        }
        let e = &mut self.edges[id];
        let due = e.machine.poll_timeout();
        if due < e.timer_at {
            e.timer_at = due;
            self.timers.push(Reverse((due, id as u32)));
        }
    }

    fn deliver(&mut self, from: SocketAddrV4, to: SocketAddrV4, mut data: Vec<u8>) {
        if let Some(s) = self.sns.iter_mut().find(|s| s.addr == to) {
            let Some(sn) = s.machine.as_mut() else { return };
            sn.handle_datagram(
                self.now_us,
                SocketAddr::V4(from),
                &mut data,
                &mut self.outbox,
            );
            self.flush_outbox(to);
            return;
        }
        let Some(&id) = self.by_ip.get(to.ip()) else {
            return;
        };
        if !self.inbound(id, from, to) {
            return;
        }
        let now = self.now_us;
        let e = &mut self.edges[id];
        let from = SocketAddr::V4(from);
        let hint = match e
            .tunnel
            .decapsulate(Now::at(now), from, &mut data, &mut self.frame_out)
        {
            Decap::Deliver {
                frame,
                decompressed,
                hint,
                ..
            } => {
                let buf = if decompressed { &self.frame_out } else { &data };
                if buf[frame.start..frame.start + 6] == e.machine.mac().0 {
                    e.rx_frames += 1;
                    self.frames.delivered += 1;
                }
                hint
            }
            Decap::Control(c) => {
                // A refusal is counted in the machine's stats, as in production.
                let _refused = e
                    .machine
                    .handle_datagram(now, c.from, c.datagram, c.trailer);
                None
            }
            Decap::Drop { hint, .. } => hint,
        };
        if let Some(h) = hint {
            e.machine.handle_hint(now, h);
        }
        self.pump_edge(id);
    }

    /// Edge `a` sends one Ethernet frame to edge `b` through its Tunnel, which decides
    /// direct or relayed (and hints the machine) as in production. Whether it arrives shows in
    /// [`SimNet::delivered_to`].
    pub fn send_frame(&mut self, a: EdgeId, b: EdgeId) {
        let (mac_a, mac_b) = (self.mac_of(a), self.mac_of(b));
        let now = self.now_us;
        let frame = &mut self.slot.0[FRAME_AT..FRAME_AT + 60];
        frame.fill(0);
        frame[..6].copy_from_slice(&mac_b.0);
        frame[6..12].copy_from_slice(&mac_a.0);
        // The local experimental EtherType: no address checks apply.
        frame[12..14].copy_from_slice(&[0x88, 0xb5]);
        let mut out: [std::ops::Range<usize>; 1] = Default::default();
        let encap = self.edges[a].tunnel.encapsulate(
            Now::at(now),
            std::slice::from_mut(&mut self.slot),
            &[60],
            &mut out,
        );
        let Encap::Send { to, path, hint } = encap else {
            self.frames.refused += 1;
            return;
        };
        match path {
            Path::Direct => self.frames.direct += 1,
            Path::Supernode => self.frames.relayed += 1,
        }
        if let Some(h) = hint {
            self.edges[a].machine.handle_hint(now, h);
            self.pump_edge(a);
        }
        let packet = self.slot.0[out[0].clone()].to_vec();
        let to = v4(to);
        let src = self.outbound(a, to);
        self.send(src, to, packet);
    }

    /// Advances virtual time, delivering datagrams and running every timer.
    pub fn run_for(&mut self, dur_us: u64) {
        let end = self.now_us + dur_us;
        loop {
            let next_packet = self.queue.peek().map_or(u64::MAX, |Reverse(d)| d.at);
            let next_edge = self.timers.peek().map_or(u64::MAX, |Reverse((t, _))| *t);
            let next_sn = self
                .sns
                .iter()
                .filter_map(|s| s.machine.as_ref())
                .map(|m| m.poll_timeout())
                .min()
                .unwrap_or(u64::MAX);
            let next = next_packet.min(next_edge).min(next_sn).max(self.now_us);
            if next > end {
                self.now_us = end;
                return;
            }
            self.now_us = next;
            if next_packet <= next {
                if let Some(Reverse(d)) = self.queue.pop() {
                    self.deliver(d.from, d.to, d.data);
                }
            } else if next_sn <= next {
                self.supernode_timers();
            } else if let Some(Reverse((t, id))) = self.timers.pop() {
                self.edge_timer(t, id as EdgeId);
            }
        }
    }

    fn supernode_timers(&mut self) {
        let now = self.now_us;
        for i in 0..self.sns.len() {
            let s = &mut self.sns[i];
            let Some(sn) = s.machine.as_mut().filter(|m| m.poll_timeout() <= now) else {
                continue;
            };
            sn.handle_timeout(now, &mut self.outbox);
            assert!(
                sn.poll_timeout() > now,
                "supernode {i}: handle_timeout left its deadline at or before now"
            );
            let addr = s.addr;
            self.flush_outbox(addr);
        }
    }

    fn edge_timer(&mut self, due: u64, id: EdgeId) {
        let now = self.now_us;
        let e = &mut self.edges[id];
        if e.timer_at != due {
            return; // superseded by an earlier deadline
        }
        e.timer_at = u64::MAX;
        if e.machine.poll_timeout() <= now {
            e.machine.handle_timeout(now);
            // A deadline that does not move would spin the real runtime as it spins this loop.
            assert!(
                e.machine.poll_timeout() > now,
                "edge {id}: handle_timeout left its deadline at or before now"
            );
        }
        self.pump_edge(id);
    }
}
