//! The edge's shell: opens the socket and the TAP, starts the data-path threads, and runs the
//! control loop (machine, timers, management, signals) on tokio.

mod lan;
mod routes;
mod tap;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use n2n_crypto::compress::Codec;
use n2n_crypto::transform::{AeadSuite, AeadTransform, RootKey, id as transform_id};
use n2n_crypto::{HeaderKey, OsRandom, RandomSource, StampGenerator, Transform};
use n2n_daemon::logging::LogHandle;
use n2n_daemon::udp::Offloads;
use n2n_daemon::{mono_micros, os, unix_micros};
use n2n_proto::{IpSubnet, Mac};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::Receiver;
use tracing::{debug, error, info, warn};

pub use tap::Tap;

use crate::cli::{AddressMode, EdgeConfig};
use crate::datapath::{self, ControlTx, FrameIo, Shared, ToControl};
use crate::machine::{Action, Edge, EdgeMachineConfig};
use crate::mgmt::{self, Control};
use crate::tunnel::{FRAME_AT, Halves, Slot, Tunnel, TunnelConfig, View};

/// Why the edge could not run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot open the UDP socket (-p {addr}): {source}")]
    Socket {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the management port (-t {port}): {source}")]
    Management { port: u16, source: std::io::Error },
    #[error("cannot create the TAP device {name} (-d): {source}")]
    Tap {
        name: String,
        source: std::io::Error,
    },
    #[error("cannot set up the transform (-k/-A): {0}")]
    Transform(String),
    #[error("cannot drop privileges to uid {uid}, gid {gid} (-u/-g): {source}")]
    Privileges {
        uid: u32,
        gid: u32,
        source: std::io::Error,
    },
    #[error("the {0} thread of the data path stopped")]
    DataPath(&'static str),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn udp_socket(cfg: &EdgeConfig) -> Result<UdpSocket, RuntimeError> {
    let err = |source| RuntimeError::Socket {
        addr: cfg.local,
        source,
    };
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    if let Some(tos) = cfg.tos {
        s.set_tos_v4(tos).map_err(err)?;
    }
    os::set_pmtu_discovery(&s, cfg.pmtu_discovery).map_err(err)?;
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&cfg.local.into()).map_err(err)?;
    Ok(s.into())
}

/// TAP and UDP offloads are on unless N2N_RS_OFFLOAD=0 (for comparisons and odd kernels).
fn offload_wanted() -> bool {
    n2n_daemon::switch_on("N2N_RS_OFFLOAD")
}

/// Whether a TSO super-frame's frames may be sealed on two cores: with more than one core,
/// unless N2N_RS_PARALLEL=0 (the send thread starts the helper only for a transform or
/// compression).
fn parallel_wanted() -> bool {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores > 1 && n2n_daemon::switch_on("N2N_RS_PARALLEL")
}

/// UDP GSO and GRO as far as `N2N_RS_OFFLOAD`, `N2N_RS_GSO`, `N2N_RS_GRO` and the start-up
/// self-test allow.
fn udp_offloads(udp: &UdpSocket) -> Offloads {
    let wanted = offload_wanted();
    n2n_daemon::udp::setup_offloads(
        udp,
        Offloads {
            gso: wanted,
            gro: wanted,
        },
    )
}

/// The sending and the receiving half of the configured transform.
fn transforms(cfg: &EdgeConfig, mac: Mac) -> Result<(Transform, Transform), RuntimeError> {
    let key = cfg.key.as_deref().map(str::as_bytes);
    let suite = match cfg.transform {
        transform_id::AEAD => Some(AeadSuite::ChaCha20Poly1305),
        transform_id::AEAD_GCM => Some(AeadSuite::Aes256Gcm),
        _ => None,
    };
    if let Some(suite) = suite {
        let root = RootKey::derive_for(suite, key.unwrap_or_default(), &cfg.community)
            .map_err(|e| RuntimeError::Transform(e.to_string()))?;
        let now = unix_micros() / 1_000_000;
        let tx = AeadTransform::new(root.clone(), mac, now, &mut OsRandom);
        let rx = AeadTransform::new(root, mac, now, &mut OsRandom);
        return Ok((Transform::Aead(Box::new(tx)), Transform::Aead(Box::new(rx))));
    }
    let mk = || {
        Transform::legacy(cfg.transform, key).map_err(|e| RuntimeError::Transform(e.to_string()))
    };
    Ok((mk()?, mk()?))
}

/// Runs the edge until SIGTERM/SIGINT or a management `stop`.
pub fn run(cfg: EdgeConfig, log: Option<LogHandle>) -> Result<(), RuntimeError> {
    let mut mac = cfg.mac.map(|m| m.0).unwrap_or_else(|| {
        let mut m = [0u8; 6];
        OsRandom.fill(&mut m);
        m
    });
    mac[0] = (mac[0] & 0xfe) | 0x02;
    let mac = Mac(mac);
    let udp = udp_socket(&cfg)?;
    // quinn-udp's socket options (UDP_GRO where the kernel has it); blocking.
    n2n_daemon::udp::offload_state(&udp, true).map_err(|source| RuntimeError::Socket {
        addr: cfg.local,
        source,
    })?;
    let offloads = udp_offloads(&udp);
    let mgmt_sock = std::net::UdpSocket::bind(("127.0.0.1", cfg.mgmt_port)).map_err(|source| {
        RuntimeError::Management {
            port: cfg.mgmt_port,
            source,
        }
    })?;
    let (seal, open) = transforms(&cfg, mac)?;
    let codec = || Codec::new(cfg.compression).map_err(|e| RuntimeError::Transform(e.to_string()));
    let header_key = cfg
        .header_encryption
        .then(|| HeaderKey::for_community(&cfg.community));
    let stamps = Arc::new(StampGenerator::default());
    let static_addr = match cfg.address {
        AddressMode::Static(a) | AddressMode::Dhcp(a) => Some(a),
        AddressMode::Auto => None,
    };
    let tunnel_cfg = TunnelConfig {
        community: cfg.community,
        own_mac: mac,
        transform: cfg.transform,
        compression: cfg.compression,
        header_key: header_key.clone().map(Box::new),
        multicast: cfg.multicast,
        routing: cfg.routing,
        p2p_window_us: u64::from(cfg.register_interval_s) * 1_000_000 / 2,
        user_auth: cfg.user.is_some(),
        filter: cfg.filter.clone(),
    };
    let halves = Halves {
        seal,
        open,
        seal_codec: codec()?,
        open_codec: codec()?,
        seed: OsRandom.next_u64(),
    };
    let tunnel = Tunnel::new(tunnel_cfg, halves, Arc::clone(&stamps));
    // The first supernode from the start: the -S2 link connects to it before registering.
    tunnel.set_view(View {
        supernode: Some(cfg.supernodes[0]),
        own_ip: static_addr.map(|a| a.addr),
        ..View::default()
    });
    let shared = Arc::new(Shared {
        tunnel,
        gso: offloads.gso.into(),
        gro: offloads.gro,
        parallel: parallel_wanted(),
        duplex_wanted: n2n_daemon::switch_on("N2N_RS_DUPLEX"),
        duplex: false.into(),
        rx_thread: OnceLock::new(),
        rx_parked: false.into(),
        tcp: cfg.tcp.then(datapath::TcpLink::default),
        tap: OnceLock::new(),
    });
    let port = udp.local_addr().map(|a| a.port()).unwrap_or(0);
    let preferred = lan::preferred_sock(cfg.preferred, port, cfg.supernodes[0]);
    if let Some(p) = preferred {
        info!(preferred = %SocketAddr::from(p), "advertising a preferred local socket (-e)");
    }
    let lan_discovery = cfg.p2p && cfg.preferred.is_none();
    let lan_sock = if lan_discovery {
        lan::lan_socket()
            .inspect_err(
                |e| warn!(error = %e, "no LAN multicast discovery: cannot open 0.0.0.0:1968"),
            )
            .ok()
    } else {
        None
    };
    let machine_cfg = EdgeMachineConfig {
        community: cfg.community,
        mac,
        desc: cfg.desc,
        dev_addr: static_addr,
        supernodes: cfg.supernodes.clone(),
        register_interval_us: u64::from(cfg.register_interval_s) * 1_000_000,
        p2p: cfg.p2p,
        header_key,
        preferred,
        lan_discovery: lan_sock.is_some(),
        register_ttl: cfg.register_ttl,
        selection: cfg.selection,
        user: cfg.user.as_ref().map(|u| u.credentials.clone()),
        tcp: cfg.tcp,
        authenticated_paths: matches!(cfg.transform, transform_id::AEAD | transform_id::AEAD_GCM),
    };
    let (control_tx, control_rx) = datapath::control_queue();
    {
        let (shared, udp, control) = (Arc::clone(&shared), udp.try_clone()?, control_tx.clone());
        let tcp = cfg.tcp;
        std::thread::Builder::new()
            .name("n2n-rx".into())
            .spawn(move || {
                if tcp {
                    datapath::run_rx_tcp(shared, control)
                } else {
                    datapath::run_rx(shared, udp, control)
                }
            })?;
    }
    let local_ip = match preferred.map(SocketAddr::from) {
        Some(SocketAddr::V4(a)) => *a.ip(),
        _ => Ipv4Addr::UNSPECIFIED,
    };
    let ctl = Control {
        password_hash: cfg.mgmt_password_hash,
        verbosity: cfg.verbosity,
        keep_running: true,
        subs: Default::default(),
        local: SocketAddr::from((local_ip, port)),
    };
    let mut shell = Shell {
        cfg,
        shared,
        udp,
        control_tx,
        log,
        tx_started: false,
        tap_dev: None,
        mac,
        ctl,
        routes: Vec::new(),
    };
    if let Some(addr) = static_addr {
        shell.bring_up_tap(addr)?;
    }
    info!(mac = %mac, community = %shell.cfg.community, transform = shell.cfg.transform, "edge started");
    if let Some(u) = &shell.cfg.user {
        info!("using username and password for edge authentication");
        if u.default_federation {
            warn!(
                "using default federation public key; a custom federation name and key (-P) is highly recommended"
            );
        }
    }
    let machine = Edge::with_wall_clock(
        machine_cfg,
        Box::new(n2n_crypto::Xorshift128Plus::seeded(OsRandom.next_u64())),
        stamps,
        mono_micros(),
        unix_micros(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(shell.control_loop(machine, control_rx, mgmt_sock, lan_sock))
}

struct Shell {
    cfg: EdgeConfig,
    shared: Arc<Shared>,
    udp: UdpSocket,
    control_tx: ControlTx,
    log: Option<LogHandle>,
    tx_started: bool,
    /// The TAP once created (`-a dhcp:` follows its address).
    tap_dev: Option<Arc<Tap>>,
    mac: Mac,
    /// Management state: verbosity, stop, subscriptions.
    ctl: Control,
    /// `-n` routes added, removed on exit.
    routes: Vec<routes::AddedRoute>,
}

impl Shell {
    /// Creates the TAP, starts the thread that reads it and drops privileges (spec §7.1 steps 4–5).
    fn bring_up_tap(&mut self, addr: IpSubnet) -> Result<(), RuntimeError> {
        let tap = Tap::create(
            &self.cfg.device,
            self.mac,
            addr,
            self.cfg.mtu,
            offload_wanted(),
        )
        .map_err(|source| RuntimeError::Tap {
            name: self.cfg.device.clone(),
            source,
        })?;
        info!(device = %self.cfg.device, address = %addr, mtu = self.cfg.mtu, "TAP device up");
        self.tap_dev = Some(Arc::clone(&tap));
        let tap: Arc<dyn FrameIo> = tap;
        let _ = self.shared.tap.set(Arc::clone(&tap));
        if !self.tx_started {
            self.tx_started = true;
            let shared = &self.shared;
            if shared.duplex_wanted
                && shared.tcp.is_none()
                && datapath::start_duplex(shared, &tap, &self.udp, &self.control_tx)?
            {
                info!("data path: one thread for both directions");
                return self.after_tap_up();
            }
            info!("data path: a send thread and a receive thread");
            let (shared, udp, control) = (
                Arc::clone(&self.shared),
                self.udp.try_clone()?,
                self.control_tx.clone(),
            );
            std::thread::Builder::new()
                .name("n2n-tx".into())
                .spawn(move || datapath::run_tx(shared, tap, udp, control))?;
        }
        self.after_tap_up()
    }

    /// Adds the `-n` routes and drops privileges, once the TAP is up.
    fn after_tap_up(&mut self) -> Result<(), RuntimeError> {
        if self.routes.is_empty() {
            // Routes need the privileges about to be dropped.
            self.routes = routes::add(&self.cfg.routes, &self.cfg.device, self.cfg.supernodes[0]);
        }
        drop_privileges(&self.cfg)
    }

    /// `-a dhcp:`: picks up the address a DHCP client set on the TAP (n2n re-reads it every
    /// 30 s; reading it at each timer tick costs one getifaddrs).
    fn follow_dhcp_address(&self, m: &mut Edge) {
        let AddressMode::Dhcp(initial) = self.cfg.address else {
            return;
        };
        let Some(tap) = &self.tap_dev else { return };
        let addr = tap.ipv4().unwrap_or(Ipv4Addr::UNSPECIFIED);
        m.set_dev_addr(mono_micros(), IpSubnet::new(addr, initial.prefix));
    }

    fn publish(&self, m: &Edge) {
        self.shared.tunnel.set_view(View::of(m));
    }

    fn perform(&mut self, m: &mut Edge) -> Result<(), RuntimeError> {
        while let Some(action) = m.poll_action() {
            match action {
                Action::Transmit { dst, data } => match &self.shared.tcp {
                    // -S2: the supernode only over TCP.
                    Some(link) if dst == m.supernode() => {
                        if !link.send(&data) {
                            debug!(%dst, "no TCP connection to the supernode yet");
                        }
                    }
                    _ => {
                        if let Err(e) = self.udp.send_to(&data, dst) {
                            warn!(%dst, error = %e, "send failed");
                        }
                    }
                },
                Action::TransmitTtl { dst, data, ttl } => {
                    // The socket is shared: frames sent meanwhile get this TTL too (as n2n).
                    let sock = socket2::SockRef::from(&self.udp);
                    let normal = sock.ttl_v4().unwrap_or(64);
                    let _ = sock.set_ttl_v4(u32::from(ttl));
                    if let Err(e) = self.udp.send_to(&data, dst) {
                        debug!(%dst, error = %e, "send failed");
                    }
                    let _ = sock.set_ttl_v4(normal);
                }
                Action::RoutesChanged => self.publish(m),
                Action::HeaderKey(key) => self.shared.tunnel.set_dynamic_key(key.header_key()),
                Action::Probe { mac, to } => {
                    let mut slot = Slot::default();
                    if let Some(r) = self.shared.tunnel.probe(datapath::now(), mac, &mut slot)
                        && let Err(e) = self.udp.send_to(&slot.0[r], to)
                    {
                        debug!(%to, error = %e, "probe not sent");
                    }
                }
                Action::PeerEvent { action, mac, sock } => {
                    self.ctl.subs.post_peer(action, mac, sock);
                }
                Action::AddressAssigned(addr) => {
                    self.bring_up_tap(addr)?;
                    self.publish(m);
                }
                Action::GratuitousArp => {
                    if let Some(addr) = m.dev_addr() {
                        let arp = crate::tunnel::gratuitous_arp(self.mac, addr.addr);
                        let mut slot = Slot::default();
                        for _ in 0..2 {
                            slot.0[FRAME_AT..FRAME_AT + arp.len()].copy_from_slice(&arp);
                            datapath::send_frame(&self.shared, &self.udp, &mut slot, arp.len());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn control_loop(
        mut self,
        mut m: Edge,
        mut control: Receiver<ToControl>,
        mgmt_sock: std::net::UdpSocket,
        lan_sock: Option<std::net::UdpSocket>,
    ) -> Result<(), RuntimeError> {
        mgmt_sock.set_nonblocking(true)?;
        let mgmt_sock = tokio::net::UdpSocket::from_std(mgmt_sock)?;
        let lan_sock = lan_sock.map(tokio::net::UdpSocket::from_std).transpose()?;
        let mut lbuf = vec![0u8; 2048];
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut mbuf = vec![0u8; 512];
        loop {
            m.set_wall_clock(mono_micros(), unix_micros());
            self.perform(&mut m)?;
            for (to, line) in std::mem::take(&mut self.ctl.subs.outbox) {
                let _ = mgmt_sock.send_to(line.as_bytes(), to).await;
            }
            let wait = m
                .poll_timeout()
                .saturating_sub(mono_micros())
                .min(1_000_000);
            tokio::select! {
                msg = control.recv() => match msg {
                    Some(ToControl::Datagram(c)) => {
                        // Refusals are counted by the machine (EdgeStats::refused).
                        let _refused = m.handle_datagram(mono_micros(), c.from, c.datagram, c.trailer);
                    }
                    Some(ToControl::Hint(h)) => m.handle_hint(mono_micros(), h),
                    Some(ToControl::LinkUp) => m.link_up(mono_micros()),
                    Some(ToControl::Stopped(which)) => {
                        // Exit with an error, so that systemd restarts the edge.
                        m.shutdown(mono_micros());
                        self.perform(&mut m)?;
                        routes::remove(&self.routes);
                        return Err(RuntimeError::DataPath(which));
                    }
                    None => {
                        error!("the control queue closed");
                        break;
                    }
                },
                r = mgmt_sock.recv_from(&mut mbuf) => {
                    let Ok((n, from)) = r else { continue };
                    let before = self.ctl.verbosity;
                    for reply in mgmt::handle(&m, &self.shared.tunnel, &mut self.ctl, mono_micros(), &mbuf[..n], from) {
                        let _ = mgmt_sock.send_to(reply.as_bytes(), from).await;
                    }
                    if self.ctl.verbosity != before && let Some(l) = &self.log {
                        l.set_verbosity(self.ctl.verbosity);
                    }
                    if !self.ctl.keep_running {
                        info!("stop requested by the management interface");
                        break;
                    }
                }
                r = recv_optional(lan_sock.as_ref(), &mut lbuf) => {
                    let Ok((n, from)) = r else { continue };
                    if let Some(c) = self.shared.tunnel.open_lan(datapath::now(), from, &mut lbuf[..n]) {
                        m.handle_lan(mono_micros(), c.from, c.datagram);
                    }
                }
                _ = tokio::time::sleep(Duration::from_micros(wait)) => {
                    m.handle_timeout(mono_micros());
                    self.follow_dhcp_address(&mut m);
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        info!("shutting down: unregistering from the supernode");
        m.shutdown(mono_micros());
        self.perform(&mut m)?;
        routes::remove(&self.routes);
        Ok(())
    }
}

/// Receives from `sock`, or never when there is none.
async fn recv_optional(
    sock: Option<&tokio::net::UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// `-u`/`-g`, or as root the `n2n` (else `nobody`) account, as n2n does. The TAP stays
/// usable: its file descriptor is already open. A drop that fails is fatal (n2n only warns):
/// an edge facing the network must not go on as root by accident.
fn drop_privileges(cfg: &EdgeConfig) -> Result<(), RuntimeError> {
    if !os::is_root() && cfg.uid.is_none() && cfg.gid.is_none() {
        return Ok(());
    }
    let fallback = os::account_ids("n2n").or_else(|| os::account_ids("nobody"));
    if let (Some(u), Some(g)) = (
        cfg.uid.or(fallback.map(|f| f.0)),
        cfg.gid.or(fallback.map(|f| f.1)),
    ) {
        os::drop_privileges(u, g).map_err(|source| RuntimeError::Privileges {
            uid: u,
            gid: g,
            source,
        })?;
        info!(uid = u, gid = g, "dropped privileges");
    }
    Ok(())
}
