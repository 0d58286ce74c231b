//! The receiving direction: header opening (`-H`, user/password), the one table of senders'
//! time stamps (spec §4.6), PACKETs opened onto frames, control datagrams for the machine.

use std::collections::HashMap;
use std::net::SocketAddr;

use n2n_crypto::compress::Codec;
use n2n_crypto::{HeaderKey, PacketContext, SenderStamp, Transform};
use n2n_proto::msg::compression;
use n2n_proto::{Datagram, Flags, Mac, Message, MsgType};

use super::{ControlMsg, Decap, DropReason, HintLimiter, Now, Tunnel, TunnelConfig, frame};
use crate::machine::PeerHint;

/// Senders whose time stamps are tracked; the table is cleared when full.
const MAX_STAMP_SLOTS: usize = 4096;

/// How a received header opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// The header time stamp (`-H`).
    pub stamp: Option<u64>,
    /// Length of the datagram without a trailer.
    pub body: usize,
    /// User/password: opened by the static key over all but a 16-byte trailer; the H128 of
    /// the encrypted bytes before it, and the trailer.
    pub trailer: Option<([u8; 16], [u8; 16])>,
}

impl TunnelConfig {
    /// Opens a received datagram's header in place: with `-H` decrypts it (user/password: the
    /// dynamic key, else the static key over all but a trailer), else checks the plain
    /// header's version. `None`: drop it.
    pub fn open_header(
        &self,
        dynamic: Option<&HeaderKey>,
        data: &mut [u8],
        wall_us: u64,
    ) -> Option<Opened> {
        let len = data.len();
        let whole = |stamp| Opened {
            stamp,
            body: len,
            trailer: None,
        };
        let Some(key) = &self.header_key else {
            return (data.len() >= 24 && data[0] == n2n_proto::PKT_VERSION).then(|| whole(None));
        };
        if !self.user_auth {
            let stamp = key.open(data, &self.community, wall_us).ok()?;
            return Some(whole(Some(stamp)));
        }
        if let Some(d) = dynamic
            && let Ok(stamp) = d.open(data, &self.community, wall_us)
        {
            return Some(whole(Some(stamp)));
        }
        let body = data.len().checked_sub(16)?;
        key.probe(&data[..body])?;
        let hash = n2n_crypto::pearson::pearson_hash_128(&data[..body]);
        let stamp = key.open(&mut data[..body], &self.community, wall_us).ok()?;
        let mut trailer = [0u8; 16];
        trailer.copy_from_slice(&data[body..]);
        Some(Opened {
            stamp: Some(stamp),
            body,
            trailer: Some((hash, trailer)),
        })
    }
}

/// Whose time stamps a header carries (spec §4.6): anything a supernode sent or relayed is
/// stamped by that supernode; the rest by the edge that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum StampSender {
    Supernode(SocketAddr),
    Peer(Mac),
}

impl StampSender {
    fn of(flags: Flags, from: SocketAddr, src_mac: Mac) -> Self {
        if flags.contains(Flags::FROM_SUPERNODE) {
            StampSender::Supernode(from)
        } else {
            StampSender::Peer(src_mac)
        }
    }
}

/// The last valid stamp of every sender, for PACKETs and control messages alike.
#[derive(Debug, Default)]
struct StampTable(HashMap<StampSender, SenderStamp>);

impl StampTable {
    /// The sender's entry; a new one, or a fresh one after our wall clock stepped back.
    fn slot(&mut self, sender: StampSender, wall_us: u64) -> &mut SenderStamp {
        if self.0.len() >= MAX_STAMP_SLOTS && !self.0.contains_key(&sender) {
            self.0.clear();
        }
        self.0
            .entry(sender)
            .or_insert_with(|| SenderStamp::new(wall_us))
            .follow_clock(wall_us)
    }
}

/// The receiving direction's state.
pub(super) struct RxState {
    open: Transform,
    codec: Codec,
    stamps: StampTable,
    hints: HintLimiter,
    /// The last direct PACKET's sender, path, time and routes snapshot (its generation): the
    /// datagrams of one receive batch share them, so the route is refreshed once per batch.
    heard: Option<(Mac, SocketAddr, u64, u64)>,
}

impl RxState {
    pub fn new(open: Transform, codec: Codec) -> Self {
        RxState {
            open,
            codec,
            stamps: StampTable::default(),
            hints: HintLimiter::default(),
            heard: None,
        }
    }

    /// A control datagram whose header opened: decoded, its community and stamp checked
    /// (`jitter`: PEER_INFO and the LAN group may be reordered by ≈160 ms).
    pub fn control(
        &mut self,
        cfg: &TunnelConfig,
        now: Now,
        from: SocketAddr,
        body: &[u8],
        opened: Opened,
        jitter: bool,
    ) -> Result<ControlMsg, DropReason> {
        let (d, _) = Datagram::decode(body).map_err(|_| DropReason::Decode)?;
        if d.community.as_bytes() != cfg.community.as_bytes() {
            return Err(DropReason::Foreign);
        }
        if let Some(stamp) = opened.stamp {
            let src = match &d.msg {
                Message::Register(r) => r.src_mac,
                Message::RegisterAck(a) => a.src_mac,
                _ => Mac::NULL,
            };
            // A peer's REGISTER/ACK shares its slot with its PACKETs, which the other thread
            // may stamp later and send sooner: allow the same reordering as PACKETs.
            let jitter = jitter
                || matches!(
                    d.msg,
                    Message::PeerInfo(_) | Message::Register(_) | Message::RegisterAck(_)
                );
            let slot = self
                .stamps
                .slot(StampSender::of(d.flags, from, src), now.wall_us);
            if !slot.accept(stamp, jitter) {
                return Err(DropReason::Replay);
            }
        }
        Ok(ControlMsg {
            from,
            datagram: d,
            trailer: opened.trailer,
        })
    }
}

impl Tunnel {
    /// A peer's REGISTER or REGISTER_ACK over its direct path keeps that path fresh, as its
    /// PACKETs do: one-way traffic must not fall back to the relay while keep-alives flow.
    pub(super) fn keepalive_heard(&self, msg: &ControlMsg, mono_us: u64) {
        if msg.datagram.flags.contains(Flags::FROM_SUPERNODE) {
            return;
        }
        let src = match &msg.datagram.msg {
            Message::Register(r) => r.src_mac,
            Message::RegisterAck(a) => a.src_mac,
            _ => return,
        };
        self.routes.load().heard_directly(&src, msg.from, mono_us);
    }

    /// [`Tunnel::decapsulate`] but for counting the drop.
    pub(super) fn decapsulate_counted(
        &self,
        now: Now,
        from: SocketAddr,
        data: &mut [u8],
        out: &mut [u8],
    ) -> Decap {
        let drop = |reason| Decap::Drop { reason, hint: None };
        let dynamic = self.dynamic_key.load();
        let Some(opened) = self.cfg.open_header(dynamic.as_deref(), data, now.wall_us) else {
            return drop(DropReason::Header);
        };
        let Ok(mut rx) = self.rx.lock() else {
            return drop(DropReason::Auth);
        };
        let rx = &mut *rx;
        let packet = data
            .get(3)
            .is_some_and(|t| MsgType::from(t & 0x1f) == MsgType::Packet);
        if !packet {
            let body = &data[..opened.body.min(data.len())];
            return match rx.control(&self.cfg, now, from, body, opened, false) {
                Ok(msg) => {
                    self.keepalive_heard(&msg, now.mono_us);
                    Decap::Control(msg)
                }
                Err(reason) => drop(reason),
            };
        }
        if opened.trailer.is_some() {
            // PACKETs never travel under the static key of a user/password community.
            return drop(DropReason::WrongKey);
        }
        let Ok((d, _)) = Datagram::decode(data) else {
            return drop(DropReason::Decode);
        };
        let Message::Packet(p) = d.msg else {
            return drop(DropReason::Decode);
        };
        let header_len = p.datagram_header_len();
        if d.community.as_bytes() != self.cfg.community.as_bytes()
            || p.transform != self.cfg.transform
        {
            return drop(DropReason::Foreign);
        }
        if p.src_mac == self.cfg.own_mac {
            return drop(DropReason::Reflected);
        }
        let sender = StampSender::of(d.flags, from, p.src_mac);
        if let Some(s) = opened.stamp
            && !rx.stamps.slot(sender, now.wall_us).fresh(s, true)
        {
            return drop(DropReason::Replay);
        }
        let routes = self.routes.load();
        if !routes.registered {
            return drop(DropReason::NotRegistered);
        }
        let ctx = PacketContext {
            community: &self.cfg.community,
            src_mac: p.src_mac,
            dst_mac: p.dst_mac,
            compression: p.compression,
            transform: p.transform,
        };
        let Some(payload) = data.get_mut(header_len..) else {
            return drop(DropReason::Decode);
        };
        let Ok(range) = rx.open.decrypt(payload, &ctx) else {
            return drop(DropReason::Auth);
        };
        // Recorded only now that the payload opened (a forged header cannot block a sender).
        if let Some(s) = opened.stamp {
            rx.stamps.slot(sender, now.wall_us).accept(s, true);
        }
        let (frame, decompressed) = if p.compression == compression::NONE {
            (header_len + range.start..header_len + range.end, false)
        } else {
            match rx.codec.decompress(p.compression, &payload[range], out) {
                Ok(len) => (0..len, true),
                Err(_) => return drop(DropReason::Decompress),
            }
        };
        // Counted on receipt, as n2n (before the checks and the TAP write).
        let relayed = d.flags.contains(Flags::FROM_SUPERNODE);
        let unicast = !p.dst_mac.is_multi_or_broadcast();
        self.counters.received(relayed, !unicast, now.wall_us);
        // An authenticated path probe (an empty frame): always passed on when it came
        // directly, since the machine waits for it to use the path.
        let probe = frame.is_empty() && rx.open.is_authenticated();
        let hint = if relayed {
            p.sock
                .filter(|s| !s.is_loopback() && !routes.peers.contains_key(&p.src_mac))
                .filter(|_| rx.hints.allow(p.src_mac, now.mono_us))
                .map(|sock| PeerHint::Relayed {
                    mac: p.src_mac,
                    sock: SocketAddr::from(sock),
                    unicast,
                })
        } else {
            let heard = (p.src_mac, from, now.mono_us, routes.generation);
            if rx.heard.replace(heard) != Some(heard) {
                routes.heard_directly(&p.src_mac, from, now.mono_us);
            }
            (probe || rx.hints.allow(p.src_mac, now.mono_us)).then_some(PeerHint::Direct {
                mac: p.src_mac,
                from,
            })
        };
        let plain = if decompressed {
            &out[frame.clone()]
        } else {
            &data[frame.clone()]
        };
        if probe {
            return Decap::Drop {
                reason: DropReason::PathProbe,
                hint,
            };
        }
        if let Some(reason) = frame::rx_check(plain, routes.own_ip, &self.cfg) {
            return Decap::Drop { reason, hint };
        }
        Decap::Deliver {
            frame,
            decompressed,
            authenticated: rx.open.is_authenticated(),
            hint,
        }
    }
}
