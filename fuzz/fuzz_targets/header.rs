//! Header decryption (`-H`): probing and decrypting hostile bytes with the community key and a
//! dynamic key; what decrypts must then decode or be refused without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use n2n_crypto::HeaderKey;
use n2n_fuzz::community;
use n2n_proto::Datagram;

fuzz_target!(|data: &[u8]| {
    let c = community();
    for key in [
        HeaderKey::for_community(&c),
        HeaderKey::for_dynamic_key(&[7; 16]),
    ] {
        let _ = key.probe(data);
        let mut packet = data.to_vec();
        if key.decrypt(&mut packet, &c).is_some() {
            let _ = Datagram::decode(&packet);
        }
        let mut packet = data.to_vec();
        let _ = key.open(&mut packet, &c, 1_795_544_064_000_000);
    }
});
