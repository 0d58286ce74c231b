//! The tiny regular-expression subset of n2n's community.list (spec §2.3): `.`, `*`, `+`, `?`,
//! classes `[abc]`, `[a-z]`, `[^…]`, and `\s \S \w \W \d \D`. No anchors or alternation (`^`
//! and `$` are literal). A name matches only if the whole name matches.

/// At most this many elements, as in the reference.
const MAX_ELEMENTS: usize = 30;
/// At most this many characters inside one class.
const MAX_CLASS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Any,
    Byte(u8),
    Class { negated: bool, items: Vec<(u8, u8)> },
    Digit(bool),
    Word(bool),
    Space(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    One,
    ZeroOrOne,
    ZeroOrMore,
    OneOrMore,
}

/// A compiled community pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    elements: Vec<(Atom, Repeat)>,
}

impl Atom {
    fn matches(&self, c: u8) -> bool {
        match self {
            Atom::Any => true,
            Atom::Byte(b) => *b == c,
            Atom::Class { negated, items } => {
                items.iter().any(|&(lo, hi)| (lo..=hi).contains(&c)) != *negated
            }
            Atom::Digit(pos) => c.is_ascii_digit() == *pos,
            Atom::Word(pos) => (c.is_ascii_alphanumeric() || c == b'_') == *pos,
            Atom::Space(pos) => c.is_ascii_whitespace() == *pos,
        }
    }
}

impl Pattern {
    /// Compiles a pattern; `None` if it is malformed or too long.
    pub fn new(src: &str) -> Option<Self> {
        let b = src.as_bytes();
        let mut i = 0;
        let mut elements: Vec<(Atom, Repeat)> = Vec::new();
        while i < b.len() {
            let c = b[i];
            i += 1;
            let repeat = match c {
                b'*' => Some(Repeat::ZeroOrMore),
                b'+' => Some(Repeat::OneOrMore),
                b'?' => Some(Repeat::ZeroOrOne),
                _ => None,
            };
            if let Some(r) = repeat {
                let last = elements.last_mut()?;
                if last.1 != Repeat::One {
                    return None;
                }
                last.1 = r;
                continue;
            }
            let atom = match c {
                b'.' => Atom::Any,
                b'\\' => {
                    let e = *b.get(i)?;
                    i += 1;
                    match e {
                        b'd' => Atom::Digit(true),
                        b'D' => Atom::Digit(false),
                        b'w' => Atom::Word(true),
                        b'W' => Atom::Word(false),
                        b's' => Atom::Space(true),
                        b'S' => Atom::Space(false),
                        other => Atom::Byte(other),
                    }
                }
                b'[' => {
                    let negated = b.get(i) == Some(&b'^');
                    if negated {
                        i += 1;
                    }
                    let mut items = Vec::new();
                    let mut count = 0;
                    loop {
                        let c = *b.get(i)?;
                        i += 1;
                        if c == b']' {
                            break;
                        }
                        count += 1;
                        if count > MAX_CLASS {
                            return None;
                        }
                        if b.get(i) == Some(&b'-') && b.get(i + 1).is_some_and(|&n| n != b']') {
                            items.push((c, b[i + 1]));
                            i += 2;
                        } else {
                            items.push((c, c));
                        }
                    }
                    Atom::Class { negated, items }
                }
                other => Atom::Byte(other),
            };
            elements.push((atom, Repeat::One));
            if elements.len() > MAX_ELEMENTS {
                return None;
            }
        }
        Some(Pattern { elements })
    }

    /// Whether the whole `name` matches.
    pub fn is_match(&self, name: &[u8]) -> bool {
        Self::match_here(&self.elements, name)
    }

    fn match_here(elements: &[(Atom, Repeat)], s: &[u8]) -> bool {
        let Some(((atom, rep), rest)) = elements.split_first() else {
            return s.is_empty();
        };
        let (min, max) = match rep {
            Repeat::One => (1, 1),
            Repeat::ZeroOrOne => (0, 1),
            Repeat::ZeroOrMore => (0, usize::MAX),
            Repeat::OneOrMore => (1, usize::MAX),
        };
        let mut n = 0;
        while n < max && n < s.len() && atom.matches(s[n]) {
            n += 1;
        }
        if n < min {
            return false;
        }
        (min..=n).rev().any(|k| Self::match_here(rest, &s[k..]))
    }
}

/// Whether a community.list word is a pattern rather than a fixed name.
pub fn is_pattern(word: &str) -> bool {
    word.bytes()
        .any(|c| matches!(c, b'.' | b'*' | b'+' | b'?' | b'[' | b']' | b'\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::new(p).expect("compiles").is_match(s.as_bytes())
    }

    #[test]
    fn full_matches_only() {
        assert!(m("net.*", "network"));
        assert!(m(".*", ""));
        assert!(!m("net", "network"));
        assert!(m("team[0-9]+", "team42"));
        assert!(!m("team[0-9]+", "team"));
        assert!(m("a?b", "b"));
        assert!(m("\\w+\\d", "ab_c7"));
        assert!(!m("\\d", "x"));
        assert!(m("[^x]y", "ay"));
        assert!(!m("[^x]y", "xy"));
        assert!(m("^a", "^a"), "^ is literal");
        assert!(m("a\\.b", "a.b"));
        assert!(!m("a\\.b", "axb"));
    }

    #[test]
    fn malformed_patterns() {
        assert!(Pattern::new("*a").is_none());
        assert!(Pattern::new("[abc").is_none());
        assert!(Pattern::new(&".".repeat(31)).is_none());
        assert!(is_pattern("a.b") && !is_pattern("plain"));
    }
}
