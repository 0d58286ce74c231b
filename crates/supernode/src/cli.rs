//! The supernode's command line and config file, as n2n 3.x (spec §1.7, §2.1–2.3).

use std::net::{Ipv4Addr, SocketAddr};

use clap::Parser;
use n2n_crypto::pearson::pearson_hash_64;
use n2n_daemon::conf::{ArgStyle, expand_args};
use n2n_proto::{Community, Mac, VersionString};

use crate::community_list::CommunityList;
use crate::machine::budget::DEFAULT_BROADCAST_RATE;
use crate::machine::federation::DEFAULT_FEDERATION;
use crate::machine::{
    AutoIpRange, DEFAULT_MAX_COMMUNITIES_PER_IP, DEFAULT_MAX_EDGES, DEFAULT_MAX_EDGES_PER_IP,
    MachineConfig, federation_community, renamed_federation,
};

/// The default supernode port (N2N_SN_LPORT_DEFAULT).
pub const DEFAULT_PORT: u16 = 7654;
/// The default management port (N2N_SN_MGMT_PORT).
pub const DEFAULT_MGMT_PORT: u16 = 5645;

#[derive(Parser, Debug)]
#[command(
    name = "supernode",
    about = "n2n-rs supernode: the registry and relay of an n2n 3.x network",
    override_usage = "supernode <config file> [options]\n       supernode [options]",
    disable_version_flag = true,
    args_override_self = true
)]
pub struct Args {
    /// UDP port (and address) to listen on: [ip:]port or ip
    #[arg(
        short = 'p',
        long = "local-port",
        value_name = "[IP:]PORT",
        default_value = "7654"
    )]
    pub local: String,
    /// Management UDP port (bound to 127.0.0.1)
    #[arg(short = 't', long = "mgmt-port", value_name = "PORT", default_value_t = DEFAULT_MGMT_PORT)]
    pub mgmt_port: u16,
    /// community.list: allowed communities, patterns, subnets and users [default: all allowed]
    #[arg(short = 'c', long = "communities", value_name = "PATH")]
    pub communities: Option<String>,
    /// Range community subnets are drawn from
    #[arg(short = 'a', long = "autoip", value_name = "MIN-MAX/BITS", default_value = "10.128.0.0-10.255.255.0/24", value_parser = parse_autoip)]
    pub autoip: AutoIpRange,
    /// Federation name [default: $N2N_FEDERATION, else Federation]
    #[arg(short = 'F', value_name = "NAME")]
    pub federation: Option<String>,
    /// Another supernode of the federation, host:port (repeatable)
    #[arg(short = 'l', value_name = "HOST:PORT", value_parser = parse_anchor)]
    pub anchors: Vec<String>,
    /// Supernode MAC address [default: random]
    #[arg(short = 'm', value_name = "MAC", value_parser = parse_mac)]
    pub mac: Option<Mac>,
    /// Disable MAC and IP address spoofing protection
    #[arg(short = 'M')]
    pub no_spoofing_protection: bool,
    /// Version text sent to edges (max 19 characters)
    #[arg(short = 'V', value_name = "TEXT", value_parser = parse_version)]
    pub version_text: Option<String>,
    /// Password for management writes and subscriptions
    #[arg(
        long = "management-password",
        value_name = "PASSWORD",
        default_value = "n2n",
        hide_default_value = true
    )]
    pub management_password: String,
    /// Stay in the foreground (default: run as a daemon, logging to syslog)
    #[arg(short = 'f', long = "foreground")]
    pub foreground: bool,
    /// User id to run as after binding [default: n2n, else nobody, when started as root]
    #[arg(short = 'u', long = "euid", value_name = "UID")]
    pub uid: Option<u32>,
    /// Group id to run as after binding
    #[arg(short = 'g', long = "egid", value_name = "GID")]
    pub gid: Option<u32>,
    /// More verbose logging (repeatable)
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Most edges registered at once, across communities (n2n-rs)
    #[arg(long = "max-edges", value_name = "N", default_value_t = DEFAULT_MAX_EDGES)]
    pub max_edges: usize,
    /// Most edges of one community at one public IP address (n2n-rs; bounds what a forged
    /// source can make a broadcast amplify to)
    #[arg(long = "max-edges-per-ip", value_name = "N", default_value_t = DEFAULT_MAX_EDGES_PER_IP,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_edges_per_ip: u32,
    /// Most communities one public IP address may create (n2n-rs; a flood of made-up names
    /// from one host cannot fill the registry)
    #[arg(long = "max-communities-per-ip", value_name = "N", default_value_t = DEFAULT_MAX_COMMUNITIES_PER_IP,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_communities_per_ip: u32,
    /// Copies per second one source address may cause by broadcasting, with a burst of two
    /// seconds' worth (n2n-rs; 0: no limit)
    #[arg(long = "max-broadcast-rate", value_name = "N", default_value_t = DEFAULT_BROADCAST_RATE)]
    pub max_broadcast_rate: u32,
}

pub use n2n_daemon::cli::CliError;

impl Args {
    /// Parses `argv` (program name first) with the config-file rule of spec §2.2.
    pub fn parse_from_argv(argv: Vec<String>) -> Result<Args, CliError> {
        if argv.len() < 2 {
            // n2n's supernode needs at least one argument; it then prints its short help.
            return Err(CliError::Help(short_help()));
        }
        let words = expand_args(argv, ArgStyle::NextToken).map_err(CliError::Bad)?;
        Args::try_parse_from(words).map_err(|e| match n2n_daemon::cli::error_line(&e) {
            Some(line) => CliError::Bad(line),
            None => CliError::Help(e.to_string()),
        })
    }

    /// The UDP listen address.
    pub fn listen(&self) -> Result<SocketAddr, String> {
        n2n_daemon::cli::parse_ip_port(&self.local, DEFAULT_PORT)
            .map_err(|e| format!("invalid value '{}' for '-p': {e}", self.local))
    }

    /// The machine configuration; reads the community list.
    pub fn machine_config(&self, random_mac: [u8; 6]) -> Result<MachineConfig, String> {
        let communities = match &self.communities {
            Some(path) => Some(CommunityList::load(path).map_err(|e| format!("-c: {e}"))?),
            None => None,
        };
        let mut mac = self.mac.map(|m| m.0).unwrap_or(random_mac);
        // Multicast bit cleared, locally administered bit set (also for a given MAC).
        mac[0] = (mac[0] & 0xfe) | 0x02;
        let version = match &self.version_text {
            Some(v) => VersionString::from_text(v),
            None => MachineConfig::default().version,
        };
        Ok(MachineConfig {
            federation: self.federation_field(),
            federation_key_name: initial_federation(),
            listen: self.listen().ok(),
            mac: Mac(mac),
            auto_ip: self.autoip,
            spoofing_protection: !self.no_spoofing_protection,
            version,
            max_edges: self.max_edges,
            max_edges_per_ip: self.max_edges_per_ip,
            max_broadcast_rate: self.max_broadcast_rate,
            max_communities_per_ip: self.max_communities_per_ip,
            communities,
        })
    }

    /// `-F`, else the N2N_FEDERATION environment variable, else n2n's default.
    pub fn federation_name(&self) -> String {
        self.federation
            .clone()
            .or_else(federation_env)
            .unwrap_or_else(|| DEFAULT_FEDERATION.to_string())
    }

    /// The federation's 20-byte community field, byte for byte as n2n builds it.
    pub fn federation_field(&self) -> Community {
        match &self.federation {
            Some(name) => renamed_federation(&initial_federation(), name),
            None => initial_federation(),
        }
    }

    pub fn management_password_hash(&self) -> u64 {
        pearson_hash_64(self.management_password.as_bytes())
    }
}

/// N2N_FEDERATION, if set.
fn federation_env() -> Option<String> {
    std::env::var("N2N_FEDERATION")
        .ok()
        .filter(|n| !n.is_empty())
}

/// The federation field n2n sets up before reading options (from N2N_FEDERATION or the
/// default); its header key always comes from this name, even after `-F`.
fn initial_federation() -> Community {
    federation_community(&federation_env().unwrap_or_else(|| DEFAULT_FEDERATION.into()))
}

/// `--generate man|bash|zsh|fish`: the man page (supernode(1)) or a completion script.
pub fn generate(kind: &str) -> Option<String> {
    n2n_daemon::cli::generate::<Args>(kind, "supernode", "1")
}

pub fn short_help() -> String {
    n2n_daemon::cli::help::<Args>()
}

fn parse_autoip(s: &str) -> Result<AutoIpRange, String> {
    let err = || "expected MIN-MAX/BITS, e.g. 10.128.0.0-10.255.255.0/24".to_string();
    let (range, bits) = s.split_once('/').ok_or_else(err)?;
    let (min, max) = range.split_once('-').ok_or_else(err)?;
    let min: Ipv4Addr = min.trim().parse().map_err(|_| err())?;
    let max: Ipv4Addr = max.trim().parse().map_err(|_| err())?;
    let prefix: u8 = bits.trim().parse().map_err(|_| err())?;
    if !(1..=30).contains(&prefix) {
        return Err("the prefix length must be 1 to 30".into());
    }
    let host = !(u32::MAX << (32 - u32::from(prefix)));
    if u32::from(min) & host != 0 || u32::from(max) & host != 0 {
        return Err("both ends must be network addresses for the prefix".into());
    }
    if u32::from(min) > u32::from(max) {
        return Err("the first address must not be above the second".into());
    }
    Ok(AutoIpRange { min, max, prefix })
}

fn parse_anchor(s: &str) -> Result<String, String> {
    if !s.contains(':') || s.len() >= 48 {
        return Err("expected host:port, shorter than 48 characters".into());
    }
    Ok(s.to_string())
}

fn parse_mac(s: &str) -> Result<Mac, String> {
    s.parse().map_err(|e: &str| e.to_string())
}

fn parse_version(s: &str) -> Result<String, String> {
    if s.len() > 19 {
        return Err("at most 19 characters".into());
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, CliError> {
        Args::parse_from_argv(
            std::iter::once("supernode")
                .chain(args.iter().copied())
                .map(String::from)
                .collect(),
        )
    }

    #[test]
    fn defaults_and_overrides() {
        let a = parse(&["-f"]).map_err(|_| "parse").expect("parses");
        assert_eq!(a.listen(), Ok("0.0.0.0:7654".parse().expect("addr")));
        assert_eq!(a.mgmt_port, 5645);
        assert_eq!(a.autoip, AutoIpRange::default());
        let a = parse(&["-p", "1234", "-p", "127.0.0.1:7777", "-vv", "-v"])
            .map_err(|_| "parse")
            .expect("parses");
        assert_eq!(a.listen(), Ok("127.0.0.1:7777".parse().expect("addr")));
        assert_eq!(a.verbose, 3);
    }

    #[test]
    fn bad_values_name_the_option_in_one_line() {
        for bad in [
            &["-a", "10.0.0.1-10.0.0.0/24"][..],
            &["-t", "x"],
            &["-m", "zz"],
            &["-l", "nocolon"],
            &["-x"],
        ] {
            match parse(bad) {
                Err(CliError::Bad(line)) => {
                    assert!(!line.contains('\n'));
                    assert!(line.contains("for '-") || line.contains("'-x'"), "{line}");
                }
                other => panic!("{bad:?} accepted: {other:?}"),
            }
        }
        assert!(matches!(parse(&["-h"]), Err(CliError::Help(_))));
        assert!(matches!(parse(&[]), Err(CliError::Help(_))));
    }
}
