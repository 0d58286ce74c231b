//! The datagram codec: any bytes decode or are refused; what decodes re-encodes to a datagram
//! that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use n2n_proto::Datagram;

fuzz_target!(|data: &[u8]| {
    let Ok((d, _rest)) = Datagram::decode(data) else {
        return;
    };
    let mut buf = [0u8; 2048];
    let n = d.encode(&mut buf).expect("a decoded datagram fits 2 KiB");
    let (again, _) = Datagram::decode(&buf[..n]).expect("re-encoded datagram decodes");
    assert_eq!(again, d);
});
