//! The management API's common parts (spec §8.3), as n2n's management.c: request parsing with
//! its `strtok` rules, authorisation, and the JSON reply lines, shared by edge and supernode.

use std::fmt::Write as _;

use n2n_crypto::pearson::pearson_hash_64;

/// n2n copies a JSON request into an 80-byte buffer (`strncpy`, then a NUL): only the first 79
/// bytes are parsed, and a NUL byte ends it early.
pub const MAX_REQUEST: usize = 79;
/// Reply tags are truncated to this many bytes (n2n's `char tag[10]`).
pub const MAX_TAG: usize = 9;
/// The tag of errors found before the tag was read.
pub const NO_TAG: &str = "-1";

/// A JSON string literal. n2n prints strings raw; escaping changes only strings that would
/// make its output invalid JSON (a `"`, a `\` or a control character).
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

/// `{"_tag":T,"_type":TYPE,"KEY":"VAL"}` (n2n's gen_json_1str).
pub fn json_1str(tag: &str, kind: &str, key: &str, val: &str) -> String {
    format!(
        "{{\"_tag\":{},\"_type\":\"{kind}\",\"{key}\":{}}}\n",
        js(tag),
        js(val)
    )
}

/// `{"_tag":T,"_type":TYPE,"KEY":N}` (n2n's gen_json_1uint).
pub fn json_1uint(tag: &str, kind: &str, key: &str, val: u32) -> String {
    format!(
        "{{\"_tag\":{},\"_type\":\"{kind}\",\"{key}\":{val}}}\n",
        js(tag)
    )
}

/// One `{"_tag":…,"_type":"error",…}` reply.
pub fn error(tag: &str, e: &str) -> Vec<String> {
    vec![json_1str(tag, "error", "error", e)]
}

/// The reply to a method: `begin`, rows (or an error), `end`, one datagram each.
#[derive(Debug)]
pub struct Rows<'a> {
    tag: &'a str,
    cmd: &'a str,
    out: Vec<String>,
}

impl<'a> Rows<'a> {
    pub fn new(tag: &'a str, cmd: &'a str) -> Self {
        let out = vec![json_1str(tag, "begin", "cmd", cmd)];
        Rows { tag, cmd, out }
    }

    /// `fields` is the inside of the object after the tag and type, e.g. `"a":1,"b":"x"`.
    pub fn row(&mut self, fields: &str) {
        self.out.push(format!(
            "{{\"_tag\":{},\"_type\":\"row\",{fields}}}\n",
            js(self.tag)
        ));
    }

    /// An error between `begin` and `end`, as n2n's handlers send them.
    pub fn error(&mut self, e: &str) {
        self.out.push(json_1str(self.tag, "error", "error", e));
    }

    /// Another datagram for the requester in sequence (an event it subscribed to).
    pub fn raw(&mut self, line: String) {
        self.out.push(line);
    }

    pub fn end(mut self) -> Vec<String> {
        self.out.push(json_1str(self.tag, "end", "cmd", self.cmd));
        self.out
    }
}

/// A request's type (its first character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
    Subscribe,
}

/// A parsed, authorised JSON request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: Kind,
    /// At most [`MAX_TAG`] bytes.
    pub tag: String,
    /// The method (or, for a subscription, the topic).
    pub method: String,
    /// The rest of the line after the method, as n2n's `argv`: `None` when there is none.
    pub arg: Option<String>,
}

/// A method: name, whether `w` may call it, help text.
pub type Method = (&'static str, bool, &'static str);

/// C's `strtok` over one buffer: tokens are separated by runs of delimiters; the delimiter
/// ending a token is consumed, and the next search may use other delimiters.
struct Strtok<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Strtok<'a> {
    fn new(s: &'a [u8]) -> Self {
        Strtok { s, pos: 0 }
    }

    fn next(&mut self, delims: &[u8]) -> Option<&'a [u8]> {
        let s = self.s;
        let start = (self.pos..s.len()).find(|&i| !delims.contains(&s[i]))?;
        match (start..s.len()).find(|&i| delims.contains(&s[i])) {
            Some(end) => {
                self.pos = end + 1;
                Some(&s[start..end])
            }
            None => {
                self.pos = s.len();
                Some(&s[start..])
            }
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// C's `strtoul(s, NULL, base)` (base 0: `0x` hex, leading `0` octal, else decimal): leading
/// white space and a sign are skipped, digits are read as far as they go (none: 0), an
/// overflow gives `u64::MAX`, a minus negates.
pub fn strtoul(s: &str, base: u32) -> u64 {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let negative = b.get(i) == Some(&b'-');
    if matches!(b.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let has_hex_prefix = |i: usize| {
        b.get(i) == Some(&b'0')
            && matches!(b.get(i + 1), Some(b'x' | b'X'))
            && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    };
    let base = match base {
        0 if has_hex_prefix(i) => {
            i += 2;
            16
        }
        0 if b.get(i) == Some(&b'0') => 8,
        0 => 10,
        16 if has_hex_prefix(i) => {
            i += 2;
            16
        }
        b => b,
    };
    let mut value: u64 = 0;
    let mut overflow = false;
    while let Some(d) = b.get(i).and_then(|&c| (c as char).to_digit(base)) {
        match value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(d)))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
        i += 1;
    }
    if overflow {
        u64::MAX
    } else if negative {
        value.wrapping_neg()
    } else {
        value
    }
}

/// Parses `<type> <tag[:flags[:password]]> <method> [arg]` as n2n's mgmt_req_init2 and checks
/// the password against `password_hash` (pearson_hash_64): a given password must match, and
/// without one only reads are allowed. `datagram` is the request as received; it is cut at
/// [`MAX_REQUEST`] bytes or a NUL. Errors found before the tag was read carry the tag `-1`.
pub fn parse(datagram: &[u8], password_hash: u64) -> Result<Request, Vec<String>> {
    let line = &datagram[..datagram.len().min(MAX_REQUEST)];
    let line = line.split(|&b| b == 0).next().unwrap_or_default();
    let mut tok = Strtok::new(line);
    let Some(kind) = tok.next(b" \r\n") else {
        return Err(error(NO_TAG, "notype"));
    };
    let kind = match kind[0] {
        b'r' => Kind::Read,
        b'w' => Kind::Write,
        b's' => Kind::Subscribe,
        _ => return Err(error(NO_TAG, "badtype")),
    };
    let Some(options) = tok.next(b" \r\n") else {
        return Err(error(NO_TAG, "nooptions"));
    };
    let Some(method) = tok.next(b" \r\n") else {
        return Err(error(NO_TAG, "nocmd"));
    };
    let arg = tok.next(b"\r\n").map(text);
    // (n2n crashes on a tag of colons only; it is empty here.)
    let mut opt = Strtok::new(options);
    let tag = opt.next(b":").unwrap_or_default();
    let tag = text(&tag[..tag.len().min(MAX_TAG)]);
    let flags = opt.next(b":").map_or(0, |f| strtoul(&text(f), 16));
    let password = if flags & 1 != 0 { opt.next(b":") } else { None };
    let authorised = match password {
        Some(p) => pearson_hash_64(p) == password_hash,
        None => kind == Kind::Read,
    };
    if !authorised {
        return Err(error(&tag, "badauth"));
    }
    Ok(Request {
        kind,
        tag,
        method: text(method),
        arg,
    })
}

/// Finds the request's method in `methods`: `unknowncmd` when it is not there, `readonly` for
/// a write to a method that takes none.
pub fn lookup<'m>(req: &Request, methods: &'m [Method]) -> Result<&'m Method, Vec<String>> {
    let Some(m) = methods.iter().find(|m| m.0 == req.method) else {
        return Err(error(&req.tag, "unknowncmd"));
    };
    if req.kind == Kind::Write && !m.1 {
        return Err(error(&req.tag, "readonly"));
    }
    Ok(m)
}

/// The `help` rows for a method table (any request type may ask).
pub fn help_rows(rows: &mut Rows<'_>, methods: &[Method]) {
    for (cmd, _, help) in methods {
        rows.row(&format!("\"cmd\":{},\"help\":{}", js(cmd), js(help)));
    }
}

/// `drops` rows (n2n-rs's addition; n2n counts no drops): one per reason, counted or not, so
/// that a reader sees every reason there is. `stage` names the part of the daemon that drops.
pub fn drop_rows<R: crate::reasons::Reason>(
    rows: &mut Rows<'_>,
    stage: &str,
    counts: impl IntoIterator<Item = (R, u64)>,
) {
    for (reason, count) in counts {
        rows.row(&format!(
            "\"stage\":{},\"reason\":{},\"count\":{count},\"why\":{}",
            js(stage),
            js(&snake_case(reason.name())),
            js(&reason.to_string())
        ));
    }
}

/// `NotRegistered` -> `not_registered`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A number with C's base auto-detection (`0x..` hex, leading `0` octal); `None` unless the
/// whole text is a number.
pub fn parse_c_int(s: &str) -> Option<u32> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// n2n's trace level after `setTraceLevel(strtoul(arg, NULL, 0))` (an int there; levels above
/// 255 are kept as 255 here).
pub fn trace_level(arg: &str) -> u8 {
    let v = strtoul(arg, 0) as u32 as i32;
    v.clamp(0, i32::from(u8::MAX)) as u8
}

/// The `stop` and `verbose` methods, alike on edge and supernode: applies a write and adds
/// the row; false for any other method.
pub fn stop_or_verbose(
    req: &Request,
    rows: &mut Rows<'_>,
    keep_running: &mut bool,
    verbosity: &mut u8,
) -> bool {
    let write = req.kind == Kind::Write;
    match req.method.as_str() {
        "stop" => {
            if write {
                *keep_running = false;
            }
            rows.row(&format!("\"keep_running\":{}", u8::from(*keep_running)));
        }
        "verbose" => {
            if write && let Some(arg) = &req.arg {
                *verbosity = trace_level(arg);
            }
            rows.row(&format!("\"traceLevel\":{verbosity}"));
        }
        _ => return false,
    }
    true
}

/// Seconds since the Unix epoch of a time in microseconds (C's `time_t`).
pub fn secs(us: u64) -> i64 {
    (us / 1_000_000) as i64
}

/// `now - then` in whole seconds, both taken as C's `time_t` (a `then` of 0 gives `now`).
pub fn ago(now_us: u64, then_us: u64) -> i64 {
    secs(now_us) - secs(then_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash() -> u64 {
        pearson_hash_64(b"n2n")
    }

    fn req(line: &str) -> Result<Request, Vec<String>> {
        parse(line.as_bytes(), hash())
    }

    fn err(line: &str) -> String {
        req(line).expect_err(line).concat()
    }

    crate::reasons! {
        #[derive(Debug, Clone, Copy)]
        enum Why {
            TooShort,
            Auth,
        }
    }

    impl std::fmt::Display for Why {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(match self {
                Why::TooShort => "shorter than a header",
                Why::Auth => "does \"not\" authenticate",
            })
        }
    }

    #[test]
    fn drop_rows_name_each_reason_in_snake_case_with_its_count_and_text() {
        let mut rows = Rows::new("7", "drops");
        drop_rows(&mut rows, "tunnel", Why::ALL.into_iter().zip([3, 0]));
        assert_eq!(
            rows.end(),
            [
                "{\"_tag\":\"7\",\"_type\":\"begin\",\"cmd\":\"drops\"}\n",
                "{\"_tag\":\"7\",\"_type\":\"row\",\"stage\":\"tunnel\",\"reason\":\"too_short\",\"count\":3,\"why\":\"shorter than a header\"}\n",
                "{\"_tag\":\"7\",\"_type\":\"row\",\"stage\":\"tunnel\",\"reason\":\"auth\",\"count\":0,\"why\":\"does \\\"not\\\" authenticate\"}\n",
                "{\"_tag\":\"7\",\"_type\":\"end\",\"cmd\":\"drops\"}\n",
            ]
        );
    }

    #[test]
    fn errors_before_the_tag_carry_minus_one() {
        assert_eq!(
            err("q 1 edges"),
            "{\"_tag\":\"-1\",\"_type\":\"error\",\"error\":\"badtype\"}\n"
        );
        assert_eq!(
            err("r 5"),
            "{\"_tag\":\"-1\",\"_type\":\"error\",\"error\":\"nocmd\"}\n"
        );
        assert_eq!(
            err("r "),
            "{\"_tag\":\"-1\",\"_type\":\"error\",\"error\":\"nooptions\"}\n"
        );
        assert_eq!(
            err("  "),
            "{\"_tag\":\"-1\",\"_type\":\"error\",\"error\":\"notype\"}\n"
        );
        assert_eq!(
            err("w 7 stop"),
            "{\"_tag\":\"7\",\"_type\":\"error\",\"error\":\"badauth\"}\n"
        );
        assert_eq!(
            err("r 8:1:bad edges"),
            "{\"_tag\":\"8\",\"_type\":\"error\",\"error\":\"badauth\"}\n"
        );
        assert_eq!(
            err("s 9 peer"),
            "{\"_tag\":\"9\",\"_type\":\"error\",\"error\":\"badauth\"}\n"
        );
    }

    #[test]
    fn options_follow_strtok() {
        // Empty fields vanish: "1::1:n2n" is tag 1, flags 1, password n2n; in "1::n2n" the
        // flags are "n2n", not a hex number, so no password follows.
        assert_eq!(req("w 1::1:n2n verbose").expect("authorised").tag, "1");
        let r = req("w 1::n2n verbose").expect_err("no password");
        assert!(r[0].contains("badauth"));
        let r = req("w 1:0x1:n2n verbose 3").expect("0x1 is hex 1");
        assert_eq!(r.kind, Kind::Write);
        assert_eq!(r.arg.as_deref(), Some("3"));
        let r = req("w 1:3:n2n:extra verbose").expect("bit 0 set");
        assert_eq!(r.tag, "1");
        let r = req("r :1:n2n edges").expect("leading colons skipped");
        assert_eq!((r.tag.as_str(), r.method.as_str()), ("1", "edges"));
        let r = req("read 0123456789abc edges").expect("type is the first character");
        assert_eq!(r.tag, "012345678");
        let r = req("r 1 post.test  a b\r\nc").expect("arg to the line end");
        assert_eq!(r.arg.as_deref(), Some(" a b"));
        let r = req("r 1 timestamps\r\n").expect("no arg");
        assert_eq!(r.arg, None);
    }

    #[test]
    fn requests_are_cut_at_79_bytes_and_at_a_nul() {
        // 2 + 73 + 5 = 80 bytes: the last "p" is cut, leaving "hel".
        let long = format!("r {} help", "1".repeat(73));
        assert_eq!(req(&long).expect("parsed").method, "hel");
        let fits = format!("r {} help", "1".repeat(72));
        assert_eq!(req(&fits).expect("parsed").method, "help");
        assert_eq!(req("r 1 edges\0x").expect("parsed").arg, None);
    }

    #[test]
    fn strtoul_as_c() {
        assert_eq!(strtoul("0x2", 0), 2);
        assert_eq!(strtoul("010", 0), 8);
        assert_eq!(strtoul(" 1", 0), 1);
        assert_eq!(strtoul("abc", 0), 0);
        assert_eq!(strtoul("12abc", 0), 12);
        assert_eq!(strtoul("n2n", 16), 0);
        assert_eq!(strtoul("1f", 16), 31);
        assert_eq!(strtoul("0x1", 16), 1);
        assert_eq!(strtoul("-1", 0), u64::MAX);
        assert_eq!(trace_level("-1"), 0);
        assert_eq!(trace_level("1000"), 255);
    }

    #[test]
    fn lookup_names_the_misses() {
        const TABLE: [Method; 2] = [("stop", true, "x"), ("edges", false, "y")];
        let r = req("w 2:1:n2n edges").expect("parsed");
        assert_eq!(
            lookup(&r, &TABLE).expect_err("readonly").concat(),
            "{\"_tag\":\"2\",\"_type\":\"error\",\"error\":\"readonly\"}\n"
        );
        let r = req("r 3 nope").expect("parsed");
        assert!(lookup(&r, &TABLE).expect_err("unknown")[0].contains("\"unknowncmd\""));
        let r = req("s 4:1:n2n edges").expect("parsed");
        assert_eq!(lookup(&r, &TABLE).expect("subscribe reads").0, "edges");
    }
}
