//! The supernode's community.list (spec §2.3): fixed names with optional subnets, patterns,
//! and `* user public-key` lines under a fixed name. Beyond n2n, a fixed name may end in `-H`
//! (`mynet -H`, `mynet 10.1.0.0/24 -H`) to require header encryption.

use std::net::Ipv4Addr;

use n2n_crypto::keys::key_from_text;
use n2n_proto::{Community, IpSubnet};

use crate::regex::{Pattern, is_pattern};

/// A user allowed in a user/password community.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub public_key: [u8; 32],
}

/// A community listed by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedCommunity {
    pub name: Community,
    /// The subnet given in the file, if valid; otherwise one is assigned.
    pub subnet: Option<IpSubnet>,
    pub users: Vec<User>,
    /// `-H` after the name (or after its subnet): plain headers are always refused, so one
    /// plain datagram cannot lock the community to plain before its edges arrive. n2n 3.1.1
    /// (load_allowed_sn_community) reads two words only (`sscanf "%s %s"`): it warns of a bad
    /// subnet for `mynet -H` and ignores a third word, so there the community stays open to
    /// plain headers.
    pub require_header_encryption: bool,
}

/// A parsed community.list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommunityList {
    pub fixed: Vec<FixedCommunity>,
    pub patterns: Vec<Pattern>,
    /// Lines that were neither (for a warning each).
    pub skipped: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("no valid community in {0}")]
    Empty(String),
}

impl CommunityList {
    pub fn load(path: &str) -> Result<Self, ListError> {
        let text = std::fs::read_to_string(path).map_err(|e| ListError::Unreadable {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        let list = Self::parse(&text);
        if list.fixed.is_empty() && list.patterns.is_empty() {
            return Err(ListError::Empty(path.to_string()));
        }
        Ok(list)
    }

    pub fn parse(text: &str) -> Self {
        let mut list = CommunityList::default();
        // Index of the fixed community user lines attach to; reset by every pattern line.
        let mut current: Option<usize> = None;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches(['\r', '\n']).trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(first) = words.next() else { continue };
            if first == "*" {
                if let (Some(i), Some(user), Some(key)) = (current, words.next(), words.next())
                    && let Some(public_key) = key_from_text(key).filter(|_| user.len() <= 15)
                {
                    list.fixed[i].users.push(User {
                        name: user.to_string(),
                        public_key,
                    });
                    continue;
                }
                list.skipped.push(n + 1);
                continue;
            }
            if is_pattern(first) {
                current = None;
                match Pattern::new(first) {
                    Some(p) => list.patterns.push(p),
                    None => list.skipped.push(n + 1),
                }
                continue;
            }
            let name = Community::from_text(first);
            let (second, third) = (words.next(), words.next());
            // `-H` where the subnet goes is a bad subnet, as before: auto-assigned.
            let subnet = second.and_then(parse_subnet);
            let require_header_encryption = second == Some("-H") || third == Some("-H");
            list.fixed.push(FixedCommunity {
                name,
                subnet,
                users: Vec::new(),
                require_header_encryption,
            });
            current = Some(list.fixed.len() - 1);
        }
        list
    }

    pub fn fixed(&self, name: &[u8]) -> Option<&FixedCommunity> {
        self.fixed.iter().find(|f| f.name.as_bytes() == name)
    }

    pub fn pattern_allows(&self, name: &[u8]) -> bool {
        self.patterns.iter().any(|p| p.is_match(name))
    }
}

/// `a.b.c.d/bits` with bits 1..=30, the host part zero, not 0.0.0.0 or 255.255.255.255.
pub fn parse_subnet(s: &str) -> Option<IpSubnet> {
    let (addr, bits) = s.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    if !(1..=30).contains(&bits) || addr.is_unspecified() || addr.is_broadcast() {
        return None;
    }
    let s = IpSubnet::new(addr, bits);
    (u32::from(addr) & !s.netmask() == 0).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_patterns_subnets_and_users() {
        let text = "# comment\n\nmynet\nteam 10.1.2.0/24\nbad 10.1.2.3/24\n* alice ROMg4FBgfOcHeWb5QKC-XQi6tvTCIx4q6-DeJ7Wrd2O\nguest[0-9]+\n* orphan ROMg4FBgfOcHeWb5QKC-XQi6tvTCIx4q6-DeJ7Wrd2O\n";
        let l = CommunityList::parse(text);
        assert_eq!(l.fixed.len(), 3);
        assert_eq!(
            l.fixed[1].subnet,
            Some(IpSubnet::new(Ipv4Addr::new(10, 1, 2, 0), 24))
        );
        assert_eq!(l.fixed[2].subnet, None, "host bits set");
        assert_eq!(l.fixed[2].users.len(), 1);
        assert_eq!(l.fixed[2].users[0].name, "alice");
        assert!(l.pattern_allows(b"guest7"));
        assert!(!l.pattern_allows(b"guest"));
        assert_eq!(
            l.skipped,
            vec![8],
            "a user line after a pattern belongs to nobody"
        );
        assert!(l.fixed(b"team").is_some());
    }

    #[test]
    fn a_trailing_dash_h_requires_header_encryption() {
        let text = "plain\nsecret -H\noffice 10.1.0.0/24 -H\nbadnet 10.1.2.3/24 -H\nspaced\t-H  \nlater 10.2.0.0/24 x\n";
        let l = CommunityList::parse(text);
        let required: Vec<(String, bool)> = l
            .fixed
            .iter()
            .map(|f| (f.name.text().into_owned(), f.require_header_encryption))
            .collect();
        assert_eq!(
            required,
            [
                ("plain", false),
                ("secret", true),
                ("office", true),
                ("badnet", true),
                ("spaced", true),
                ("later", false),
            ]
            .map(|(n, r)| (n.to_string(), r))
        );
        assert_eq!(l.fixed[1].subnet, None, "-H is no subnet: auto-assigned");
        assert_eq!(
            l.fixed[2].subnet,
            Some(IpSubnet::new(Ipv4Addr::new(10, 1, 0, 0), 24))
        );
        assert_eq!(l.fixed[3].subnet, None, "host bits set");
        assert_eq!(
            l.fixed[5].subnet,
            Some(IpSubnet::new(Ipv4Addr::new(10, 2, 0, 0), 24)),
            "an unknown third word is ignored as before"
        );
        assert!(l.skipped.is_empty());
        // Only a fixed name takes the flag; a pattern's further words stay ignored.
        let l = CommunityList::parse("guest[0-9]+ -H\n");
        assert!(l.fixed.is_empty());
        assert!(l.pattern_allows(b"guest1"));
    }
}
