//! Offload segmentation: a TAP read (virtio header + frame) from the kernel is split into
//! frames that each fit a transmit slot; hostile headers are refused, never trusted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use n2n_edge::datapath::offload::{MAX_READ, MAX_SEGMENTS, segment};
use n2n_edge::tunnel::{MAX_FRAME, Slot};

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_READ {
        return;
    }
    thread_local! {
        static SLOTS: std::cell::RefCell<Vec<Slot>> =
            std::cell::RefCell::new((0..MAX_SEGMENTS).map(|_| Slot::default()).collect());
    }
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        let mut lens = [0usize; MAX_SEGMENTS];
        let mut read = data.to_vec();
        if let Ok(n) = segment(&mut read, &mut slots, &mut lens) {
            assert!((1..=MAX_SEGMENTS).contains(&n));
            assert!(lens[..n].iter().all(|&l| l <= MAX_FRAME));
        }
    });
});
