//! The management API's common parts (spec §8.3): request parsing, authorisation and the JSON
//! reply framing, shared by edge and supernode.

use std::fmt::Write as _;

use n2n_crypto::pearson::pearson_hash_64;

/// Requests are truncated to this length for JSON parsing.
pub const MAX_REQUEST: usize = 80;
/// Reply tags are truncated to this many characters.
const MAX_TAG: usize = 9;

/// A JSON string literal (n2n does not escape; we do, so the output stays valid JSON).
pub fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// One `{"_tag":…,"_type":"error",…}` reply.
pub fn error(tag: &str, e: &str) -> Vec<String> {
    vec![format!(
        "{{\"_tag\":{},\"_type\":\"error\",\"error\":{}}}\n",
        js(tag),
        js(e)
    )]
}

/// `begin`, rows, `end`.
#[derive(Debug)]
pub struct Rows<'a> {
    tag: &'a str,
    cmd: &'a str,
    out: Vec<String>,
}

impl<'a> Rows<'a> {
    pub fn new(tag: &'a str, cmd: &'a str) -> Self {
        let out = vec![format!(
            "{{\"_tag\":{},\"_type\":\"begin\",\"cmd\":{}}}\n",
            js(tag),
            js(cmd)
        )];
        Rows { tag, cmd, out }
    }

    /// `fields` is the inside of the object after the tag and type, e.g. `"a":1,"b":"x"`.
    pub fn row(&mut self, fields: &str) {
        self.out.push(format!(
            "{{\"_tag\":{},\"_type\":\"row\",{fields}}}\n",
            js(self.tag)
        ));
    }

    pub fn end(mut self) -> Vec<String> {
        self.out.push(format!(
            "{{\"_tag\":{},\"_type\":\"end\",\"cmd\":{}}}\n",
            js(self.tag),
            js(self.cmd)
        ));
        self.out
    }
}

/// A parsed, authorised JSON request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// `r`, `w` or `s`.
    pub kind: &'a str,
    pub tag: String,
    pub method: &'a str,
    pub arg: Option<&'a str>,
}

/// Parses `<type> <tag[:flags[:password]]> <method> [arg]` and checks the password against
/// `password_hash` (pearson_hash_64). Writes and subscriptions need it; a wrong one is always
/// refused. `methods` lists each method and whether it may be written.
pub fn parse<'a>(
    text: &'a str,
    password_hash: u64,
    methods: &[(&str, bool, &str)],
) -> Result<Request<'a>, Vec<String>> {
    parse_in(text, password_hash, methods, "unknowncmd")
}

/// [`parse`] against another table (the edge's subscription topics), whose misses are
/// reported as `unknown`.
pub fn parse_in<'a>(
    text: &'a str,
    password_hash: u64,
    methods: &[(&str, bool, &str)],
    unknown: &str,
) -> Result<Request<'a>, Vec<String>> {
    let mut words = text.split(' ').filter(|w| !w.is_empty());
    let kind = words.next().unwrap_or("");
    let Some(options) = words.next() else {
        return Err(error("-1", "nooptions"));
    };
    let mut opt = options.split(':');
    let tag: String = opt.next().unwrap_or("").chars().take(MAX_TAG).collect();
    let flags = u32::from_str_radix(opt.next().unwrap_or("0"), 16).unwrap_or(0);
    let password = if flags & 1 != 0 { opt.next() } else { None };
    if !matches!(kind, "r" | "w" | "s") {
        return Err(error(&tag, "badtype"));
    }
    let Some(method) = words.next() else {
        return Err(error(&tag, "nocmd"));
    };
    let authorised = match password {
        Some(p) if pearson_hash_64(p.as_bytes()) != password_hash => {
            return Err(error(&tag, "badauth"));
        }
        Some(_) => true,
        None => false,
    };
    if kind != "r" && !authorised {
        return Err(error(&tag, "badauth"));
    }
    let Some(&(_, writable, _)) = methods.iter().find(|m| m.0 == method) else {
        return Err(error(&tag, unknown));
    };
    if kind == "w" && !writable {
        return Err(error(&tag, "readonly"));
    }
    Ok(Request {
        kind,
        tag,
        method,
        arg: words.next(),
    })
}

/// The `help` rows for a method table.
pub fn help_rows(tag: &str, methods: &[(&str, bool, &str)]) -> Vec<String> {
    let mut rows = Rows::new(tag, "help");
    for (cmd, _, help) in methods {
        rows.row(&format!("\"cmd\":{},\"help\":{}", js(cmd), js(help)));
    }
    rows.end()
}

/// A number with C's base auto-detection (`0x..` hex, leading `0` octal).
pub fn parse_c_int(s: &str) -> Option<u32> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// The `stop` and `verbose` methods, alike on edge and supernode: applies a write and returns
/// the row's fields; `None` for any other method.
pub fn stop_or_verbose(
    req: &Request<'_>,
    keep_running: &mut bool,
    verbosity: &mut u8,
) -> Option<String> {
    let write = req.kind == "w";
    match req.method {
        "stop" => {
            if write {
                *keep_running = false;
            }
            Some(format!("\"keep_running\":{}", u8::from(*keep_running)))
        }
        "verbose" => {
            if write && let Some(level) = req.arg.and_then(parse_c_int) {
                *verbosity = level.min(4) as u8;
            }
            Some(format!("\"traceLevel\":{verbosity}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: [(&str, bool, &str); 1] = [("peer", false, "Changes to peer list")];

    #[test]
    fn misses_are_named_after_the_table_and_passwords_are_checked() {
        let hash = pearson_hash_64(b"n2n");
        let r = parse_in("s 7:1:n2n peer", hash, &TABLE, "unknowntopic").expect("valid");
        assert_eq!((r.kind, r.tag.as_str(), r.method), ("s", "7", "peer"));
        assert!(
            parse_in("s 7:1:n2n nope", hash, &TABLE, "unknowntopic").expect_err("unknown topic")[0]
                .contains("\"unknowntopic\"")
        );
        assert!(
            parse("r 7 nope", hash, &TABLE).expect_err("unknown")[0].contains("\"unknowncmd\"")
        );
        assert!(
            parse_in("s 7 peer", hash, &TABLE, "unknowntopic").expect_err("no password")[0]
                .contains("badauth")
        );
    }
}
