//! `supernode`: parses n2n's command line, binds, daemonises, drops privileges, runs.

use std::process::ExitCode;

use n2n_crypto::{OsRandom, RandomSource};
use n2n_daemon::{logging, mono_micros, os, unix_micros};
use n2n_supernode::cli::{Args, CliError};
use n2n_supernode::machine::Supernode;
use n2n_supernode::mgmt::Control;
use n2n_supernode::runtime;
use tracing::{error, info, warn};

fn fail(msg: &str) -> ExitCode {
    eprintln!("supernode: error: {}", msg.trim_start_matches("error: "));
    ExitCode::from(1)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--generate") {
        return match argv.get(2).and_then(|k| n2n_supernode::cli::generate(k)) {
            Some(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("supernode: error: --generate takes man, bash, zsh or fish");
                ExitCode::from(1)
            }
        };
    }
    let args = match Args::parse_from_argv(std::env::args().collect()) {
        Ok(a) => a,
        Err(CliError::Help(text)) => {
            println!("{}", text.trim_end());
            return ExitCode::SUCCESS;
        }
        Err(CliError::Bad(line)) => return fail(&line),
    };
    let listen = match args.listen() {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    let mut mac = [0u8; 6];
    OsRandom.fill(&mut mac);
    let cfg = match args.machine_config(mac) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let udp = match std::net::UdpSocket::bind(listen) {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot listen on -p {listen}: {e}")),
    };
    // Room for the bursts a relay sees (an edge's GSO batch arrives as up to 64 datagrams at
    // once); the kernel caps it at net.core.rmem_max/wmem_max.
    n2n_daemon::udp::set_buffer_sizes(&udp, 4 << 20);
    // n2n also takes -S2 edges over TCP on the same port number.
    let tcp = match std::net::TcpListener::bind(listen).and_then(|l| {
        l.set_nonblocking(true)?;
        Ok(l)
    }) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("supernode: warning: no TCP on -p {listen} (for -S2 edges): {e}");
            None
        }
    };
    let mgmt = match std::net::UdpSocket::bind(("127.0.0.1", args.mgmt_port)) {
        Ok(s) => s,
        Err(e) => {
            return fail(&format!(
                "cannot open the management port -t {}: {e}",
                args.mgmt_port
            ));
        }
    };
    if !args.foreground
        && let Err(e) = os::daemonize()
    {
        return fail(&format!("cannot run as a daemon: {e}"));
    }
    let verbosity = logging::DEFAULT_VERBOSITY.saturating_add(args.verbose);
    let log = logging::init("supernode", verbosity, !args.foreground);
    if let Err(e) = drop_privileges(&args) {
        error!("cannot drop privileges: {e}");
        return ExitCode::from(1);
    }
    if args.federation_name() == n2n_supernode::machine::federation::DEFAULT_FEDERATION {
        warn!("using the default federation name; a custom one (-F) is highly recommended");
    }
    if let (Some(list), Some(path)) = (&cfg.communities, &args.communities) {
        for line in &list.skipped {
            warn!("{path}:{line}: malformed community list line ignored");
        }
    }
    info!(mac = %cfg.mac, "supernode MAC");
    let mut sn = Supernode::new(cfg, mono_micros(), Box::new(OsRandom));
    sn.set_wall_clock(mono_micros(), unix_micros());
    let ctl = Control {
        password_hash: args.management_password_hash(),
        verbosity,
        keep_running: true,
        list_path: args.communities.clone(),
        out: Default::default(),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let result = rt.block_on(async move {
        let state = n2n_daemon::udp::offload_state(&udp, false)?;
        let all = n2n_daemon::udp::Offloads {
            gso: true,
            gro: true,
        };
        let offloads = n2n_daemon::udp::setup_offloads(&udp, all);
        let udp = tokio::net::UdpSocket::from_std(udp)?;
        let mgmt = tokio::net::UdpSocket::from_std(nonblocking(mgmt)?)?;
        let tcp = match tcp {
            Some(l) => Some(tokio::net::TcpListener::from_std(l)?),
            None => None,
        };
        let sockets = runtime::Sockets {
            udp,
            state,
            gso: offloads.gso,
            mgmt,
            tcp,
        };
        runtime::run(
            sn,
            sockets,
            args.anchors.clone(),
            ctl,
            Some(log),
            runtime::termination(),
        )
        .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::from(1)
        }
    }
}

fn nonblocking(s: std::net::UdpSocket) -> std::io::Result<std::net::UdpSocket> {
    s.set_nonblocking(true)?;
    Ok(s)
}

/// `-u`/`-g`, or as root the `n2n` (else `nobody`) account, as n2n does.
fn drop_privileges(args: &Args) -> std::io::Result<()> {
    if !os::is_root() && args.uid.is_none() && args.gid.is_none() {
        return Ok(());
    }
    let fallback = os::account_ids("n2n").or_else(|| os::account_ids("nobody"));
    let uid = args.uid.or(fallback.map(|f| f.0));
    let gid = args.gid.or(fallback.map(|f| f.1));
    match (uid, gid) {
        (Some(u), Some(g)) => {
            os::drop_privileges(u, g)?;
            info!(uid = u, gid = g, "dropped privileges");
            Ok(())
        }
        _ => Ok(()),
    }
}
