//! Logging with n2n's verbosity levels (0 error, 1 warning, 2 normal, 3 info, 4 debug),
//! changeable at run time from the management API. Foreground: stdout, as n2n; daemon: syslog.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Registry, fmt, reload};

/// n2n's default level ("normal").
pub const DEFAULT_VERBOSITY: u8 = 2;

fn filter(verbosity: u8) -> LevelFilter {
    match verbosity {
        0 => LevelFilter::ERROR,
        1 => LevelFilter::WARN,
        2 => LevelFilter::INFO,
        3 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Changes the level after start-up.
#[derive(Clone)]
pub struct LogHandle(reload::Handle<LevelFilter, Registry>);

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogHandle")
    }
}

impl LogHandle {
    pub fn set_verbosity(&self, verbosity: u8) {
        let _ = self.0.modify(|f| *f = filter(verbosity));
    }
}

/// Installs the global subscriber. `to_syslog` after daemonising.
pub fn init(program: &'static str, verbosity: u8, to_syslog: bool) -> LogHandle {
    let (level, handle) = reload::Layer::new(filter(verbosity));
    let registry = tracing_subscriber::registry().with(level);
    if to_syslog {
        crate::os::open_syslog(program);
        let layer = fmt::layer()
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_writer(crate::os::SyslogWriter::default);
        let _ = registry.with(layer).try_init();
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        let layer = fmt::layer()
            .with_target(false)
            .with_ansi(ansi)
            .with_writer(std::io::stdout);
        let _ = registry.with(layer).try_init();
    }
    LogHandle(handle)
}
