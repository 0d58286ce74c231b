//! Config files and the community list: any text (first byte: edge.conf, supernode.conf or
//! community.list) parses to a configuration or to one error; nothing panics. Inputs that
//! would make the edge resolve a host name (a word with ':' that is not an IPv4 socket) are
//! left out: a fuzzer must not query DNS.
#![no_main]

use libfuzzer_sys::fuzz_target;
use n2n_daemon::conf::{ArgStyle, file_to_args};
use n2n_edge::cli::EdgeConfig;
use n2n_supernode::cli::Args;
use n2n_supernode::community_list::CommunityList;

fuzz_target!(|data: &[u8]| {
    let [which, text @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    match which % 3 {
        0 => {
            let words = file_to_args(text, ArgStyle::RestOfLine);
            let resolves =
                |w: &String| w.contains(':') && w.parse::<std::net::SocketAddrV4>().is_err();
            if words.iter().any(resolves) || words.first().is_some_and(|w| !w.starts_with('-')) {
                return;
            }
            let argv = std::iter::once("edge".to_string()).chain(words).collect();
            let _ = EdgeConfig::from_argv(argv, |_| None);
        }
        1 => {
            let words = file_to_args(text, ArgStyle::NextToken);
            if words.first().is_some_and(|w| !w.starts_with('-')) {
                return; // would be read as a config file path
            }
            let argv = std::iter::once("supernode".to_string())
                .chain(words)
                .collect();
            if let Ok(args) = Args::parse_from_argv(argv) {
                let _ = args.listen();
            }
        }
        _ => {
            let list = CommunityList::parse(text);
            let _ = list.fixed(b"n2nvectors");
            let _ = list.pattern_allows(b"n2nvectors");
        }
    }
});
