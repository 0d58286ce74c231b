//! The edge's command line, config file and environment, as n2n 3.x (spec §1.1–1.5, §2.1–2.2).

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

use clap::Parser;
use n2n_crypto::keys::key_from_text;
use n2n_crypto::pearson::pearson_hash_64;
use n2n_crypto::transform::id as transform_id;
use n2n_daemon::conf::{ArgStyle, expand_args};
use n2n_proto::msg::compression;
use n2n_proto::{Community, Desc, IpSubnet, Mac};

use crate::filter::{Rules, parse_rule};
use crate::machine::{Selection, UserCredentials};

#[derive(Parser, Debug)]
#[command(
    name = "edge",
    about = "n2n-rs edge: joins an n2n 3.x community and bridges a TAP device to it",
    override_usage = "edge <config file> [options]\n       edge -c <community> -l <supernode host:port> [options]",
    disable_version_flag = true,
    args_override_self = true
)]
pub struct Args {
    /// Community name [env: N2N_COMMUNITY]
    #[arg(short = 'c', long = "community", value_name = "NAME")]
    pub community: Option<String>,
    /// Encryption key [env: N2N_KEY]
    #[arg(short = 'k', value_name = "KEY")]
    pub key: Option<String>,
    /// TAP address: [static:]ip[/bits] or dhcp:0.0.0.0 [default: assigned by the supernode]
    #[arg(short = 'a', value_name = "ADDRESS")]
    pub address: Option<String>,
    /// Supernode host:port (repeatable)
    #[arg(short = 'l', long = "supernode-list", value_name = "HOST:PORT")]
    pub supernodes: Vec<String>,
    /// TAP device name
    #[arg(
        short = 'd',
        long = "tap-device",
        value_name = "NAME",
        default_value = "edge0"
    )]
    pub device: String,
    /// TAP MAC address [default: random]
    #[arg(short = 'm', value_name = "MAC")]
    pub mac: Option<String>,
    /// TAP MTU
    #[arg(short = 'M', value_name = "MTU", default_value_t = 1290)]
    pub mtu: u16,
    /// Local UDP [ip:]port [default: any address, OS-chosen port]
    #[arg(short = 'p', value_name = "[IP:]PORT")]
    pub local: Option<String>,
    /// Supernode registration interval, seconds
    #[arg(short = 'i', value_name = "SECONDS", default_value_t = 20)]
    pub register_interval: u32,
    /// IP TTL of hole-punching REGISTERs (0 = system default)
    #[arg(short = 'L', value_name = "TTL", default_value_t = 0)]
    pub register_ttl: u8,
    /// Cipher: 1 none, 2 Twofish, 3 AES, 4 ChaCha20, 5 Speck, 6 ChaCha20-Poly1305, 7 AES-256-GCM (6 and 7: n2n-rs) [default: 3 with a key, else 1]
    #[arg(short = 'A', value_name = "N", num_args = 0..=1, default_missing_value = "3", require_equals = false)]
    pub cipher: Option<u8>,
    /// Encrypt headers with the community name as key
    #[arg(short = 'H')]
    pub header_encryption: bool,
    /// Compression: 1 LZO, 2 ZSTD [default: none]
    #[arg(short = 'z', value_name = "N", num_args = 0..=1, default_missing_value = "1")]
    pub compression: Option<u8>,
    /// Accept Ethernet multicast
    #[arg(short = 'E')]
    pub multicast: bool,
    /// Allow routed and bridged traffic
    #[arg(short = 'r')]
    pub routing: bool,
    /// Stay in the foreground (default: run as a daemon, logging to syslog)
    #[arg(short = 'f')]
    pub foreground: bool,
    /// User id to run as once the TAP is up [default: n2n, else nobody, when started as root]
    #[arg(short = 'u', long = "euid", value_name = "UID")]
    pub uid: Option<u32>,
    /// Group id to run as once the TAP is up
    #[arg(short = 'g', long = "egid", value_name = "GID")]
    pub gid: Option<u32>,
    /// Description sent to the supernode [default: host name]
    #[arg(short = 'I', value_name = "TEXT")]
    pub desc: Option<String>,
    /// Preferred local address advertised to peers on the same LAN (IPv4 or auto)
    #[arg(short = 'e', value_name = "IP")]
    pub preferred: Option<String>,
    /// Peer-to-peer off: 1 everything via the supernode over UDP, 2 over TCP
    #[arg(short = 'S', value_name = "N", num_args = 0..=1, default_missing_value = "1")]
    pub supernode_only: Option<u8>,
    /// Enable path-MTU discovery
    #[arg(short = 'D')]
    pub pmtu_discovery: bool,
    /// IP TOS of the UDP socket (decimal or 0x..)
    #[arg(short = 'T', value_name = "TOS")]
    pub tos: Option<String>,
    /// Management UDP port (bound to 127.0.0.1)
    #[arg(short = 't', value_name = "PORT", default_value_t = 5644)]
    pub mgmt_port: u16,
    /// Password for management writes and subscriptions
    #[arg(
        long = "management-password",
        value_name = "PASSWORD",
        default_value = "n2n",
        hide_default_value = true
    )]
    pub management_password: String,
    /// More verbose logging (repeatable)
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less verbose logging (repeatable)
    #[arg(short = 'V', action = clap::ArgAction::Count)]
    pub quiet: u8,
    /// Password for user/password authentication (the user is -I) [env: N2N_PASSWORD]
    #[arg(short = 'J', value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Federation public key for user/password authentication (n2n-keygen -F <federation>)
    #[arg(short = 'P', value_name = "KEY")]
    pub federation_key: Option<String>,
    /// Traffic filter rule SRC,DST[,PROTO…] (repeatable), e.g. 0.0.0.0/0,10.0.0.0/8,ICMP-
    #[arg(short = 'R', value_name = "RULE")]
    pub rules: Vec<String>,
    /// Route a network through the overlay, CIDR:GATEWAY (repeatable; n2n 3.1.1)
    #[arg(short = 'n', value_name = "CIDR:GW")]
    pub routes: Vec<String>,
    /// Supernode selection by round-trip time [default: by load]
    #[arg(long = "select-rtt")]
    pub select_rtt: bool,
    /// Supernode selection by the lowest MAC address
    #[arg(long = "select-mac")]
    pub select_mac: bool,
}

/// The edge's address mode (`-a`, spec §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressMode {
    Static(IpSubnet),
    /// Ask the supernode (no `-a`).
    Auto,
    /// `dhcp:ip[/bits]`: the TAP starts with `ip` (normally 0.0.0.0: none) and a DHCP client
    /// on the overlay sets its address, which the edge then follows.
    Dhcp(IpSubnet),
}

/// A validated edge configuration.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub community: Community,
    /// `-k`, never shown by `Debug`.
    pub key: Option<n2n_daemon::Secret>,
    pub address: AddressMode,
    pub supernodes: Vec<SocketAddr>,
    pub device: String,
    pub mac: Option<Mac>,
    pub mtu: u16,
    pub local: SocketAddr,
    pub register_interval_s: u32,
    pub register_ttl: u8,
    /// `--select-rtt` / `--select-mac`, else by load.
    pub selection: Selection,
    /// Wire transform id (1–5, or 96 for `-A6`, 97 for `-A7`).
    pub transform: u8,
    pub header_encryption: bool,
    /// `-J` (with `-I` and `-P`): user/password authentication.
    pub user: Option<UserLogin>,
    /// `-R` traffic filter rules.
    pub filter: Rules,
    /// `-n` routes through the overlay.
    pub routes: Vec<OverlayRoute>,
    /// `-S2`: everything through the supernode over TCP.
    pub tcp: bool,
    pub compression: u8,
    pub multicast: bool,
    pub routing: bool,
    pub foreground: bool,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub desc: Desc,
    pub preferred: Option<Preferred>,
    pub p2p: bool,
    pub pmtu_discovery: bool,
    pub tos: Option<u32>,
    pub mgmt_port: u16,
    pub mgmt_password_hash: u64,
    pub verbosity: u8,
}

pub use n2n_daemon::cli::CliError;

/// `-n cidr:gateway`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlayRoute {
    pub net: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

fn parse_route(s: &str) -> Result<OverlayRoute, String> {
    let (cidr, gw) = s
        .rsplit_once(':')
        .ok_or("expected CIDR:GATEWAY, e.g. 192.168.0.0/24:10.0.0.1")?;
    let (net, prefix) = cidr
        .split_once('/')
        .ok_or("expected a prefix length, e.g. /24")?;
    let net: Ipv4Addr = net.parse().map_err(|_| format!("bad network '{net}'"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("bad prefix length '{prefix}'"))?;
    let gateway: Ipv4Addr = gw.parse().map_err(|_| format!("bad gateway '{gw}'"))?;
    let host_bits = if prefix == 0 {
        u32::MAX
    } else {
        !(u32::MAX << (32 - prefix))
    };
    if u32::from(net) & host_bits != 0 {
        return Err(format!("{net}/{prefix} is not a network address"));
    }
    Ok(OverlayRoute {
        net,
        prefix,
        gateway,
    })
}

/// User/password login settings.
#[derive(Debug, Clone)]
pub struct UserLogin {
    pub credentials: UserCredentials,
    /// No `-P`: n2n's default federation key (warned about, as n2n does).
    pub default_federation: bool,
}

/// `-e`: the LAN address advertised to the supernode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preferred {
    Addr(Ipv4Addr),
    /// The local address of the route to the (first) supernode.
    Auto,
}

fn bad(s: impl Into<String>) -> CliError {
    CliError::Bad(s.into())
}

impl EdgeConfig {
    /// Parses `argv` (program name first) and the environment into a configuration.
    pub fn from_argv(
        argv: Vec<String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<EdgeConfig, CliError> {
        if argv.len() < 2 {
            return Err(CliError::Help(short_help()));
        }
        let words = expand_args(argv, ArgStyle::RestOfLine).map_err(CliError::Bad)?;
        let a = Args::try_parse_from(words).map_err(|e| match n2n_daemon::cli::error_line(&e) {
            Some(line) => bad(line),
            None => CliError::Help(e.to_string()),
        })?;
        Self::from_args(a, env)
    }

    fn from_args(a: Args, env: impl Fn(&str) -> Option<String>) -> Result<EdgeConfig, CliError> {
        let mut rules = Vec::new();
        for r in &a.rules {
            rules.push(parse_rule(r).map_err(|e| bad(format!("-R {r}: {e}")))?);
        }
        let mut routes = Vec::new();
        for r in &a.routes {
            routes.push(parse_route(r).map_err(|e| bad(format!("-n {r}: {e}")))?);
        }
        if routes.iter().any(|r| r.prefix == 0) && a.supernodes.len() != 1 {
            return Err(bad(
                "-n 0.0.0.0/0: a default route needs exactly one supernode (-l)",
            ));
        }
        let selection = match (a.select_rtt, a.select_mac) {
            (_, true) => Selection::Mac,
            (true, false) => Selection::Rtt,
            (false, false) => Selection::Load,
        };
        let community_name = a
            .community
            .or_else(|| env("N2N_COMMUNITY"))
            .ok_or_else(|| bad("-c: a community name is required"))?;
        let community = Community::new(&community_name).map_err(|e| bad(format!("-c: {e}")))?;
        let key = a
            .key
            .or_else(|| env("N2N_KEY"))
            .filter(|k| !k.is_empty())
            .map(n2n_daemon::Secret::new);
        let transform = match (a.cipher, &key) {
            (None | Some(1), Some(_)) => transform_id::AES,
            (None, None) => transform_id::NULL,
            (Some(1), None) => transform_id::NULL,
            (Some(n @ 2..=5), Some(_)) => n,
            (Some(6), Some(_)) => transform_id::AEAD,
            (Some(7), Some(_)) => transform_id::AEAD_GCM,
            (Some(n @ 2..=7), None) => {
                return Err(bad(format!(
                    "-A{n}: this cipher needs a key (-k or N2N_KEY)"
                )));
            }
            (Some(n), _) => return Err(bad(format!("-A{n}: unknown cipher (1 to 7)"))),
        };
        let compression = match a.compression {
            None => compression::NONE,
            Some(1) => compression::LZO,
            Some(2) => compression::ZSTD,
            Some(n) => return Err(bad(format!("-z{n}: unknown compression (1 LZO, 2 ZSTD)"))),
        };
        let (p2p, tcp) = match a.supernode_only {
            None => (true, false),
            Some(1) => (false, false),
            Some(2) => (false, true),
            Some(n) => return Err(bad(format!("-S{n}: expected -S1 or -S2"))),
        };
        if a.supernodes.is_empty() {
            return Err(bad("-l: at least one supernode (host:port) is required"));
        }
        let mut supernodes = Vec::new();
        for s in &a.supernodes {
            if !s.contains(':') || s.len() > 47 {
                return Err(bad(format!("-l {s}: expected host:port")));
            }
            let addr = s
                .to_socket_addrs()
                .ok()
                .and_then(|mut it| it.find(SocketAddr::is_ipv4))
                .ok_or_else(|| bad(format!("-l {s}: cannot resolve to an IPv4 address")))?;
            supernodes.push(addr);
        }
        let address = match a.address.as_deref() {
            None => AddressMode::Auto,
            Some(s) => parse_address(s).map_err(|e| bad(format!("-a {s}: {e}")))?,
        };
        let mac = match &a.mac {
            None => None,
            Some(m) => Some(m.parse::<Mac>().map_err(|e| bad(format!("-m {m}: {e}")))?),
        };
        if a.device.is_empty() || a.device.len() > 15 {
            return Err(bad(format!(
                "-d {}: an interface name has 1 to 15 characters",
                a.device
            )));
        }
        if a.register_interval < 1 {
            return Err(bad(
                "-i: the registration interval must be at least 1 second",
            ));
        }
        if a.mtu < 576 {
            return Err(bad(format!("-M {}: the MTU must be at least 576", a.mtu)));
        }
        let local = match &a.local {
            None => SocketAddr::from(([0, 0, 0, 0], 0)),
            Some(s) => {
                n2n_daemon::cli::parse_ip_port(s, 0).map_err(|e| bad(format!("-p {s}: {e}")))?
            }
        };
        let preferred = match a.preferred.as_deref() {
            None => None,
            Some("auto") => Some(Preferred::Auto),
            Some(s) => Some(Preferred::Addr(s.parse().map_err(|_| {
                bad(format!("-e {s}: expected an IPv4 address or auto"))
            })?)),
        };
        let tos = match &a.tos {
            None => None,
            Some(t) => Some(
                n2n_daemon::mgmt::parse_c_int(t)
                    .ok_or_else(|| bad(format!("-T {t}: expected a number")))?,
            ),
        };
        let desc = Desc::from_text(&a.desc.unwrap_or_else(hostname));
        let user = match a.password.or_else(|| env("N2N_PASSWORD")) {
            None => None,
            Some(password) => {
                // n2n-rs also allows -A6 here when every edge of the community is n2n-rs.
                if !matches!(
                    transform,
                    transform_id::CHACHA20
                        | transform_id::SPECK
                        | transform_id::AEAD
                        | transform_id::AEAD_GCM
                ) {
                    return Err(bad(
                        "-J: user-password authentication requires ChaCha20 (-A4) or SPECK (-A5) to be used",
                    ));
                }
                let federation = match &a.federation_key {
                    Some(k) => key_from_text(k).ok_or_else(|| {
                        bad(format!(
                            "-P {k}: expected a 43-character federation public key (n2n-keygen -F <federation>)"
                        ))
                    })?,
                    None => UserCredentials::default_federation_key(),
                };
                // The user name is the description (-I) field, as in n2n.
                Some(UserLogin {
                    credentials: UserCredentials::new(desc.as_bytes(), &password, &federation),
                    default_federation: a.federation_key.is_none(),
                })
            }
        };

        let verbosity = (2 + a.verbose).saturating_sub(a.quiet);
        Ok(EdgeConfig {
            community,
            key,
            address,
            supernodes,
            device: a.device,
            mac,
            mtu: a.mtu,
            local,
            register_interval_s: a.register_interval,
            register_ttl: a.register_ttl,
            selection,
            transform,
            // User/password authentication always encrypts headers (spec §7.10).
            header_encryption: a.header_encryption || user.is_some(),
            user,
            filter: Rules::new(rules),
            routes,
            tcp,
            compression,
            multicast: a.multicast,
            routing: a.routing,
            foreground: a.foreground,
            uid: a.uid,
            gid: a.gid,
            desc,
            preferred,
            p2p,
            pmtu_discovery: a.pmtu_discovery,
            tos,
            mgmt_port: a.mgmt_port,
            mgmt_password_hash: pearson_hash_64(a.management_password.as_bytes()),
            verbosity,
        })
    }
}

/// `--generate man|bash|zsh|fish`: the man page (edge(8)) or a completion script.
pub fn generate(kind: &str) -> Option<String> {
    n2n_daemon::cli::generate::<Args>(kind, "edge", "8")
}

pub fn short_help() -> String {
    n2n_daemon::cli::help::<Args>()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().chars().take(15).collect())
        .unwrap_or_default()
}

/// `[static:|dhcp:]ip[/bits]`; an unknown mode word means auto (n2n).
fn parse_address(s: &str) -> Result<AddressMode, String> {
    let (mode, rest) = match s.split_once(':') {
        Some((m, r)) => (m, r),
        None => ("static", s),
    };
    let dhcp = match mode {
        "static" => false,
        "dhcp" => true,
        _ => return Ok(AddressMode::Auto),
    };
    let (ip, bits) = match rest.split_once('/') {
        Some((ip, b)) => (
            ip,
            b.parse::<u8>()
                .map_err(|_| "invalid prefix length".to_string())?,
        ),
        None => (rest, 24),
    };
    if !(1..=32).contains(&bits) {
        return Err("the prefix length must be 1 to 32".into());
    }
    let ip: Ipv4Addr = ip.parse().map_err(|_| "not an IPv4 address".to_string())?;
    let subnet = IpSubnet::new(ip, bits);
    Ok(if dhcp {
        AddressMode::Dhcp(subnet)
    } else {
        AddressMode::Static(subnet)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<EdgeConfig, CliError> {
        EdgeConfig::from_argv(
            std::iter::once("edge")
                .chain(args.iter().copied())
                .map(String::from)
                .collect(),
            |_| None,
        )
    }

    #[test]
    fn the_key_is_never_shown() {
        let c = parse(&["-c", "x", "-l", "127.0.0.1:7777", "-k", "hunter2secret"]).expect("ok");
        assert_eq!(c.key.as_deref(), Some("hunter2secret"));
        assert!(!format!("{c:?}").contains("hunter2secret"));
    }

    #[test]
    fn dhcp_preferred_auto_and_register_ttl() {
        let c = parse(&[
            "-c",
            "x",
            "-l",
            "127.0.0.1:7777",
            "-a",
            "dhcp:0.0.0.0",
            "-e",
            "auto",
            "-L",
            "3",
        ])
        .map_err(|_| "parse")
        .expect("ok");
        assert_eq!(
            c.address,
            AddressMode::Dhcp(IpSubnet::new(Ipv4Addr::UNSPECIFIED, 24))
        );
        assert_eq!(c.preferred, Some(Preferred::Auto));
        assert_eq!(c.register_ttl, 3);
        let c = parse(&["-c", "x", "-l", "127.0.0.1:7777", "-e", "192.168.1.5"])
            .map_err(|_| "parse")
            .expect("ok");
        assert_eq!(
            c.preferred,
            Some(Preferred::Addr(Ipv4Addr::new(192, 168, 1, 5)))
        );
        assert!(parse(&["-c", "x", "-l", "127.0.0.1:7777", "-e", "lan"]).is_err());
    }

    #[test]
    fn typical_command_line() {
        let c = parse(&[
            "-c",
            "k2t9",
            "-k",
            "secret",
            "-a",
            "10.0.0.1",
            "-l",
            "127.0.0.1:7777",
            "-f",
        ])
        .map_err(|_| "parse")
        .expect("ok");
        assert_eq!(c.transform, transform_id::AES, "a key selects AES");
        assert_eq!(
            c.address,
            AddressMode::Static(IpSubnet::new(Ipv4Addr::new(10, 0, 0, 1), 24))
        );
        assert_eq!(c.device, "edge0");
        assert_eq!(c.mtu, 1290);
        let c = parse(&[
            "-c",
            "x",
            "-k",
            "s",
            "-A6",
            "-z2",
            "-H",
            "-a",
            "static:10.0.0.1/16",
            "-l",
            "127.0.0.1:1",
        ])
        .map_err(|_| "parse")
        .expect("ok");
        assert_eq!(
            (c.transform, c.compression, c.header_encryption),
            (transform_id::AEAD, 3, true)
        );
        assert_eq!(
            c.address,
            AddressMode::Static(IpSubnet::new(Ipv4Addr::new(10, 0, 0, 1), 16))
        );
        let c = parse(&["-c", "x", "-l", "127.0.0.1:1", "-A1"])
            .map_err(|_| "parse")
            .expect("ok");
        assert_eq!(
            (c.transform, c.address),
            (transform_id::NULL, AddressMode::Auto)
        );
    }

    #[test]
    fn overlay_routes() {
        let c = parse(&[
            "-c",
            "x",
            "-l",
            "127.0.0.1:1",
            "-n",
            "192.168.0.0/24:10.0.0.1",
        ])
        .map_err(|_| "parse")
        .expect("parses");
        assert_eq!(
            c.routes,
            vec![OverlayRoute {
                net: Ipv4Addr::new(192, 168, 0, 0),
                prefix: 24,
                gateway: Ipv4Addr::new(10, 0, 0, 1),
            }]
        );
        for bad in [
            "192.168.0.1/24:10.0.0.1",
            "192.168.0.0:10.0.0.1",
            "10.0.0.0/8:gw",
        ] {
            assert!(
                parse(&["-c", "x", "-l", "127.0.0.1:1", "-n", bad]).is_err(),
                "{bad}"
            );
        }
        let two = [
            "-c",
            "x",
            "-l",
            "127.0.0.1:1",
            "-l",
            "127.0.0.1:2",
            "-n",
            "0.0.0.0/0:10.0.0.1",
        ];
        assert!(
            parse(&two).is_err(),
            "a default route needs exactly one supernode"
        );
    }

    #[test]
    fn refusals_are_one_line_naming_the_option() {
        for (args, opt) in [
            (&["-c", "x", "-l", "127.0.0.1:1", "-A3"][..], "-A3"),
            (&["-c", "x", "-l", "127.0.0.1:1", "-k", "k", "-A9"], "-A9"),
            (&["-c", "x", "-l", "127.0.0.1:1", "-J", "pw"], "-J"),
            (&["-c", "x", "-l", "127.0.0.1:1", "-S3"], "-S3"),
            (
                &[
                    "-c",
                    "x",
                    "-l",
                    "127.0.0.1:1",
                    "-R",
                    "0.0.0.0/0,0.0.0.0/99,TCP-",
                ],
                "-R",
            ),
            (&["-c", "x"], "-l"),
            (&["-l", "127.0.0.1:1"], "-c"),
            (&["-c", "x", "-l", "nocolon"], "-l"),
            (&["-c", "x", "-l", "127.0.0.1:1", "-a", "10.0.0.300"], "-a"),
        ] {
            match parse(args) {
                Err(CliError::Bad(line)) => {
                    assert!(line.starts_with(opt) && !line.contains('\n'), "{line}")
                }
                other => panic!("{args:?} accepted: {other:?}"),
            }
        }
    }
}
