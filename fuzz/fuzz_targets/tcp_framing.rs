//! `-S2` TCP framing: a hostile stream, cut anywhere, yields the same messages as in one piece,
//! each at most one message long, or an error that drops the connection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use n2n_proto::tcp::{Deframer, MAX_TCP_MESSAGE};

fn run(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
    let mut d = Deframer::default();
    let mut out = Vec::new();
    for c in chunks {
        if d.push(c, |m| out.push(m.to_vec())).is_err() {
            return (out, false);
        }
    }
    (out, true)
}

fuzz_target!(|data: &[u8]| {
    let [cut, stream @ ..] = data else {
        return;
    };
    let whole = run(&[stream]);
    for m in &whole.0 {
        assert!(m.len() <= MAX_TCP_MESSAGE);
    }
    // The same stream in pieces of `cut + 1` bytes.
    let pieces: Vec<&[u8]> = stream.chunks(usize::from(*cut) + 1).collect();
    assert_eq!(run(&pieces), whole);
});
