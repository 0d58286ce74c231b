//! Command-line pieces both daemons share: n2n's `[ip:]port` form, generated man pages and
//! completions, and clap errors reduced to the one line an operator needs.

use std::net::{Ipv4Addr, SocketAddr};

/// Why the command line did not yield a configuration.
#[derive(Debug)]
pub enum CliError {
    /// `-h`/`--help` (or no arguments): print this and exit 0.
    Help(String),
    /// Bad configuration: print this one line (it names the option) and exit 1.
    Bad(String),
}

/// `[ip:]port`, or just `ip` (then `default_port`); n2n's `-p` form.
pub fn parse_ip_port(s: &str, default_port: u16) -> Result<SocketAddr, String> {
    let default = default_port.to_string();
    let (ip, port) = match s.rsplit_once(':') {
        Some((ip, port)) => (ip, port),
        None if s.contains('.') => (s, default.as_str()),
        None => ("0.0.0.0", s),
    };
    let ip: Ipv4Addr = ip.parse().map_err(|_| "not an IPv4 address".to_string())?;
    let port: u16 = port.parse().map_err(|_| "not a port number".to_string())?;
    Ok(SocketAddr::from((ip, port)))
}

/// `--generate man|bash|zsh|fish` for a clap parser: the man page (in `section`) or a
/// completion script, from the same definition the parser uses.
pub fn generate<A: clap::CommandFactory>(kind: &str, name: &str, section: &str) -> Option<String> {
    let mut out = Vec::new();
    match kind {
        "man" => clap_mangen::Man::new(A::command())
            .section(section.to_string())
            .render(&mut out)
            .ok()?,
        "bash" | "zsh" | "fish" => {
            let shell: clap_complete::Shell = kind.parse().ok()?;
            clap_complete::generate(shell, &mut A::command(), name, &mut out);
        }
        _ => return None,
    }
    String::from_utf8(out).ok()
}

/// The short help text.
pub fn help<A: clap::CommandFactory>() -> String {
    A::command().render_help().to_string()
}

/// A clap error as one line without the `error: ` prefix; `None` for help requests.
pub fn error_line(e: &clap::Error) -> Option<String> {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => None,
        _ => {
            let text = e.to_string();
            Some(
                text.lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_port_forms() {
        assert_eq!(
            parse_ip_port("7777", 7654),
            Ok("0.0.0.0:7777".parse().expect("addr"))
        );
        assert_eq!(
            parse_ip_port("127.0.0.1", 7654),
            Ok("127.0.0.1:7654".parse().expect("addr"))
        );
        assert_eq!(
            parse_ip_port("127.0.0.1:1", 7654),
            Ok("127.0.0.1:1".parse().expect("addr"))
        );
        assert!(parse_ip_port("x:1", 0).is_err());
        assert!(parse_ip_port("99999", 0).is_err());
    }
}
