//! The edge's data plane as one object (STYLE.md §13; boringtun's `Tunn` is the model). The
//! [`Tunnel`] owns every per-packet decision: the routes the control machine publishes, peer
//! liveness, header time stamps and the one replay table, the transform and the frame checks.
//! Its calls take the time and caller buffers and make no syscalls, so a unit test, the
//! simulator and the data-path threads (`crate::datapath`, which only move bytes) run the
//! same code. On the wire it is one Ethernet frame per datagram, as n2n.
//!
//! The two directions work in parallel: each locks only its own half (sending: the sealer
//! and hint limiter, the transform itself being shared with any twin sealer; receiving:
//! transform, decompressor, stamps, hint limiter). The
//! control machine and the Tunnel exchange plain messages: [`View`] and the dynamic key one
//! way, [`ControlMsg`] and [`PeerHint`] the other.

mod counters;
mod frame;
mod open;
mod routes;
mod seal;

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};
use n2n_crypto::compress::Codec;
use n2n_crypto::{HeaderKey, StampGenerator, Transform};
use n2n_proto::{Community, Datagram, Mac};

pub use counters::{Counters, DropReason};
pub use frame::gratuitous_arp;
pub use n2n_crypto::transform::Nonces;
pub use open::Opened;
pub use routes::{HintLimiter, View};
pub use seal::Sealer;

use crate::machine::PeerHint;
use open::RxState;
use routes::Routes;
use seal::SealWith;

/// PACKET header without a socket.
pub const PACKET_HEADER: usize = 38;
/// Where a frame starts in a transmit buffer: room for the header and the transform prefix.
pub const FRAME_AT: usize = PACKET_HEADER + n2n_crypto::transform::PREFIX;
/// Largest frame handled (n2n's packet buffer).
pub const MAX_FRAME: usize = 2048;
/// A transmit buffer: headroom, frame, transform suffix.
pub const BUF_LEN: usize = FRAME_AT + MAX_FRAME + n2n_crypto::transform::SUFFIX;

/// One preallocated transmit buffer; the frame lies at `FRAME_AT` and is sealed in place.
pub struct Slot(pub Box<[u8; BUF_LEN]>);

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

impl Default for Slot {
    fn default() -> Self {
        Slot(Box::new([0u8; BUF_LEN]))
    }
}

impl AsRef<[u8]> for Slot {
    fn as_ref(&self) -> &[u8] {
        &self.0[..]
    }
}

impl AsMut<[u8]> for Slot {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0[..]
    }
}

/// The time of a call: `mono_us` (never steps; every deadline and liveness window) and
/// `wall_us` (Unix time; only what the wire carries: `-H` stamps and the management API's
/// "last seen" times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono_us: u64,
    pub wall_us: u64,
}

impl Now {
    /// Both clocks at `us` (tests and the simulator, where they agree).
    pub fn at(us: u64) -> Self {
        Now {
            mono_us: us,
            wall_us: us,
        }
    }
}

/// Fixed settings of the data plane.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    pub community: Community,
    pub own_mac: Mac,
    pub transform: u8,
    pub compression: u8,
    /// Boxed: the simulator keeps a Tunnel for each of 150 000 edges.
    pub header_key: Option<Box<HeaderKey>>,
    pub multicast: bool,
    pub routing: bool,
    /// Direct sending stops when a peer has been silent this long (register interval / 2).
    pub p2p_window_us: u64,
    /// User/password authentication: `header_key` is the static key (registrations and their
    /// answers, with a 16-byte trailer); everything else uses the dynamic key (spec §4.4).
    pub user_auth: bool,
    /// `-R` rules, checked both ways.
    pub filter: crate::filter::Rules,
}

/// How the datagrams of [`Tunnel::encapsulate`] travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// To a peer whose direct path is confirmed and fresh.
    Direct,
    /// Through the current supernode (over TCP with `-S2`).
    Supernode,
}

/// What [`Tunnel::encapsulate`] made of a batch of frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap {
    /// Send the sealed datagrams (`out[i]` in slot `i`; an empty range was dropped and
    /// counted) to `to`. `hint` goes to the control machine.
    Send {
        to: SocketAddr,
        path: Path,
        hint: Option<PeerHint>,
    },
    Drop(DropReason),
}

/// A TAP read's frames, routed by [`Tunnel::route`]: where they go and what they are sealed
/// for. Its frames may be sealed on several threads ([`Tunnel::seal_batch_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    dst: Mac,
    wall_us: u64,
    to: SocketAddr,
    path: Path,
    hint: Option<PeerHint>,
}

/// A control datagram for the machine: header opened, time stamp checked, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMsg {
    pub from: SocketAddr,
    pub datagram: Datagram,
    /// User/password: opened by the static key over all but a 16-byte trailer; the H128 of
    /// the encrypted bytes before it, and the trailer (the machine checks it).
    pub trailer: Option<([u8; 16], [u8; 16])>,
}

/// What [`Tunnel::decapsulate`] made of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decap {
    /// A frame for the TAP: at `frame` in the datagram buffer, or in `out` when
    /// `decompressed`. `authenticated`: an AEAD transform opened it. `hint` goes to the
    /// control machine.
    Deliver {
        frame: Range<usize>,
        decompressed: bool,
        authenticated: bool,
        hint: Option<PeerHint>,
    },
    /// For the control machine.
    Control(ControlMsg),
    /// Dropped and counted; a frame dropped by the checks still tells of its sender.
    Drop {
        reason: DropReason,
        hint: Option<PeerHint>,
    },
}

struct TxState {
    sealer: Sealer,
    hints: HintLimiter,
}

/// The data plane (see the module documentation).
pub struct Tunnel {
    cfg: TunnelConfig,
    routes: ArcSwap<Routes>,
    tx: Mutex<TxState>,
    rx: Mutex<RxState>,
    /// Header stamps for everything this edge sends, shared with the control machine.
    stamps: Arc<StampGenerator>,
    /// User/password: the dynamic header key (both directions read it here).
    dynamic_key: ArcSwapOption<HeaderKey>,
    counters: Counters,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tunnel({})", self.cfg.own_mac)
    }
}

/// The sending and the receiving halves of the transform and the codec, and a seed.
pub struct Halves {
    pub seal: Transform,
    pub open: Transform,
    pub seal_codec: Codec,
    pub open_codec: Codec,
    pub seed: u64,
}

impl std::fmt::Debug for Halves {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Halves({})", self.seal.name())
    }
}

impl Tunnel {
    /// Before the first [`Self::set_view`] nothing is sent or delivered (spec §7.1 step 6).
    pub fn new(cfg: TunnelConfig, halves: Halves, stamps: Arc<StampGenerator>) -> Self {
        let compress = cfg.compression != n2n_proto::msg::compression::NONE;
        Tunnel {
            routes: ArcSwap::from_pointee(Routes::default()),
            tx: Mutex::new(TxState {
                sealer: Sealer::new(
                    Arc::new(halves.seal),
                    halves.seal_codec,
                    halves.seed,
                    compress,
                ),
                hints: HintLimiter::default(),
            }),
            rx: Mutex::new(RxState::new(halves.open, halves.open_codec)),
            stamps,
            dynamic_key: ArcSwapOption::empty(),
            counters: Counters::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &TunnelConfig {
        &self.cfg
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The supernode in use (where relayed traffic goes).
    pub fn supernode(&self) -> Option<SocketAddr> {
        self.routes.load().supernode
    }

    /// Where a unicast frame to `dst` would go directly now, as [`Self::encapsulate`] decides
    /// (`None`: through the supernode).
    pub fn direct_path(&self, now: Now, dst: &Mac) -> Option<SocketAddr> {
        self.routes
            .load()
            .direct(dst, now.mono_us, self.cfg.p2p_window_us)
    }

    /// A sealer for a second sending thread ([`Self::seal_batch_with`]).
    pub fn twin_sealer(&self, codec: Codec, seed: u64) -> Option<Sealer> {
        Some(self.tx.lock().ok()?.sealer.twin(codec, seed))
    }

    /// Installs what the control machine decided (registration, supernode, direct routes,
    /// own address). Liveness already seen of a peer is kept.
    pub fn set_view(&self, view: View) {
        let old = self.routes.load();
        self.routes.store(Arc::new(Routes::from_view(view, &old)));
    }

    /// User/password: the dynamic header key the supernode handed over.
    pub fn set_dynamic_key(&self, key: HeaderKey) {
        self.dynamic_key.store(Some(Arc::new(key)));
    }

    /// `-A6`/`-A7`: a path probe to `dst`, an authenticated PACKET with an empty frame, sealed
    /// in `slot`; its range there. The peer's Tunnel delivers nothing but tells its machine
    /// that the path it came by is authentic.
    pub fn probe(&self, now: Now, dst: Mac, slot: &mut Slot) -> Option<Range<usize>> {
        let mut tx = self.tx.lock().ok()?;
        let mut nonces = tx.sealer.reserve(1)?;
        let dynamic = self.dynamic_key.load();
        tx.sealer.seal(
            &self.seal_with(&dynamic, dst, now.wall_us),
            &mut nonces,
            &mut slot.0,
            0,
        )
    }

    /// Counts drops that happen outside the tunnel (send failures, a full control queue).
    pub fn count_drop(&self, reason: DropReason, n: u64) {
        self.counters.drop(reason, n);
    }

    /// Seals the frames in `slots[i][FRAME_AT..][..lens[i]]` (one TAP read: they share one
    /// Ethernet header) in place and says where they go; `out[i]` is where datagram `i` lies
    /// in its slot. [`Self::route`], [`Self::seal_batch`] and [`Self::finish`] in one call.
    pub fn encapsulate(
        &self,
        now: Now,
        slots: &mut [Slot],
        lens: &[usize],
        out: &mut [Range<usize>],
    ) -> Encap {
        self.encapsulate_by(
            now,
            slots,
            lens,
            out,
            |batch, mut nonces, slots, lens, out| {
                self.seal_batch(batch, &mut nonces, slots, lens, out)
            },
        )
    }

    /// [`Self::encapsulate`] with the sealing done by `seal` (the batch, its nonces and the
    /// first `count` slots, lengths and ranges; returns how many it sealed): a caller may
    /// share it between threads.
    pub fn encapsulate_by(
        &self,
        now: Now,
        slots: &mut [Slot],
        lens: &[usize],
        out: &mut [Range<usize>],
        seal: impl FnOnce(&Batch, Nonces, &mut [Slot], &[usize], &mut [Range<usize>]) -> u64,
    ) -> Encap {
        let count = lens.len().min(slots.len()).min(out.len());
        let (batch, nonces) = match self.route(now, &slots[..count], &lens[..count]) {
            Ok(routed) => routed,
            Err(reason) => return Encap::Drop(reason),
        };
        let sealed = seal(
            &batch,
            nonces,
            &mut slots[..count],
            &lens[..count],
            &mut out[..count],
        );
        self.finish(&batch, count as u64, sealed)
    }

    /// Checks a TAP read's frames (by the first: they share one Ethernet header), decides
    /// where they go and reserves what sealing them takes. A refusal is counted for each frame.
    pub fn route(
        &self,
        now: Now,
        slots: &[Slot],
        lens: &[usize],
    ) -> Result<(Batch, Nonces), DropReason> {
        let count = lens.len().min(slots.len());
        if count == 0 {
            return Err(DropReason::TooShort);
        }
        let routes = self.routes.load();
        let dropped = |reason| {
            self.counters.drop(reason, count as u64);
            Err(reason)
        };
        let first = &slots[0].0[FRAME_AT..FRAME_AT + lens[0].min(MAX_FRAME)];
        if first.len() < 14 {
            return dropped(DropReason::TooShort);
        }
        let Some(supernode) = routes.supernode.filter(|_| routes.registered) else {
            return dropped(DropReason::NotRegistered);
        };
        if let Some(reason) = frame::tx_check(first, routes.own_ip, &self.cfg) {
            return dropped(reason);
        }
        let dst = frame::dst_mac(first);
        let Ok(mut tx) = self.tx.lock() else {
            return dropped(DropReason::Seal);
        };
        let Some(nonces) = tx.sealer.reserve(count) else {
            return dropped(DropReason::Seal);
        };
        let (direct, hint) = match routes.direct(&dst, now.mono_us, self.cfg.p2p_window_us) {
            Some(sock) => (Some(sock), None),
            None if dst.is_multi_or_broadcast() => (None, None),
            None => (
                None,
                tx.hints
                    .allow(dst, now.mono_us)
                    .then_some(PeerHint::Need(dst)),
            ),
        };
        let batch = Batch {
            dst,
            wall_us: now.wall_us,
            to: direct.unwrap_or(supernode),
            path: if direct.is_some() {
                Path::Direct
            } else {
                Path::Supernode
            },
            hint,
        };
        Ok((batch, nonces))
    }

    /// Seals frames of a routed batch in place with the Tunnel's own sealer, taking their
    /// nonces from `nonces`; returns how many were sealed (`out[i]` is empty for the others).
    pub fn seal_batch(
        &self,
        batch: &Batch,
        nonces: &mut Nonces,
        slots: &mut [Slot],
        lens: &[usize],
        out: &mut [Range<usize>],
    ) -> u64 {
        match self.tx.lock() {
            Ok(mut tx) => self.seal_batch_with(&mut tx.sealer, batch, nonces, slots, lens, out),
            Err(_) => {
                // Nothing sealed: no range may point at the plain frames.
                out.iter_mut().for_each(|r| *r = 0..0);
                0
            }
        }
    }

    /// [`Self::seal_batch`] with a [`Self::twin_sealer`], on another thread: two threads may
    /// seal the two halves of one batch at once, each with its part of the nonces.
    pub fn seal_batch_with(
        &self,
        sealer: &mut Sealer,
        batch: &Batch,
        nonces: &mut Nonces,
        slots: &mut [Slot],
        lens: &[usize],
        out: &mut [Range<usize>],
    ) -> u64 {
        let dynamic = self.dynamic_key.load();
        let with = self.seal_with(&dynamic, batch.dst, batch.wall_us);
        let mut sealed = 0;
        for ((slot, &len), out) in slots.iter_mut().zip(lens).zip(out) {
            let r = sealer.seal(&with, nonces, &mut slot.0, len);
            sealed += u64::from(r.is_some());
            *out = r.unwrap_or(0..0);
        }
        sealed
    }

    /// Counts a sealed batch of `count` frames, `sealed` of them sealed, and says where they go.
    pub fn finish(&self, batch: &Batch, count: u64, sealed: u64) -> Encap {
        self.counters
            .sealed(sealed, batch.path == Path::Direct, batch.dst);
        self.counters
            .drop(DropReason::Seal, count.saturating_sub(sealed));
        Encap::Send {
            to: batch.to,
            path: batch.path,
            hint: batch.hint,
        }
    }

    fn seal_with<'a>(
        &'a self,
        dynamic: &'a Option<Arc<HeaderKey>>,
        dst: Mac,
        wall_us: u64,
    ) -> SealWith<'a> {
        SealWith {
            cfg: &self.cfg,
            stamps: &self.stamps,
            dynamic_key: dynamic.as_deref(),
            dst,
            wall_us,
        }
    }

    /// Opens one datagram in place: a PACKET becomes a frame for the TAP (decompressed into
    /// `out` if need be), anything else a [`ControlMsg`].
    pub fn decapsulate(
        &self,
        now: Now,
        from: SocketAddr,
        data: &mut [u8],
        out: &mut [u8],
    ) -> Decap {
        let decap = self.decapsulate_counted(now, from, data, out);
        if let Decap::Drop { reason, .. } = decap {
            self.counters.drop(reason, 1);
        }
        decap
    }

    /// A datagram heard on the LAN discovery group (spec §7.6): opened and stamp-checked
    /// (with jitter) like any other; only REGISTERs are of use.
    pub fn open_lan(&self, now: Now, from: SocketAddr, data: &mut [u8]) -> Option<ControlMsg> {
        let dynamic = self.dynamic_key.load();
        let opened = self
            .cfg
            .open_header(dynamic.as_deref(), data, now.wall_us)?;
        if opened.trailer.is_some() {
            return None;
        }
        let mut rx = self.rx.lock().ok()?;
        let msg = rx
            .control(&self.cfg, now, from, &data[..opened.body], opened, true)
            .ok()?;
        self.keepalive_heard(&msg, now.mono_us);
        Some(msg)
    }
}

#[cfg(test)]
pub(crate) mod tests;
