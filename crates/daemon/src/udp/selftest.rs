//! The start-up self-test of UDP GSO and GRO. Some kernels corrupt UDP GSO (Linux 7.0 to
//! 7.1.4 among them) and a device or a filter may refuse it, so before the data path uses an
//! offload it sends a few patterned datagrams to itself on loopback and checks they arrive
//! whole; what fails is turned off (datagrams then leave in `sendmmsg` and arrive from
//! `recvmmsg`). `N2N_RS_GSO=0` and `N2N_RS_GRO=0` turn each off without a test.

use std::io::{self, IoSlice};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use super::datagrams::{Offloads, Receiver, send_datagrams};
use super::offload_state;
use crate::os;

/// The test's datagrams: equal sizes and one shorter, as a GSO run ends.
const SIZES: [usize; 4] = [1200, 1200, 1200, 700];
/// How long the test waits for its datagrams on loopback.
const WAIT: Duration = Duration::from_millis(300);

/// The two things the test does, so a test can stand in for the kernel.
pub trait Probe {
    /// Sends `datagrams` to the receiving end, as one GSO send when `gso`, to be received
    /// with GRO `gro` (set before sending: the kernel decides as it queues).
    fn send(&mut self, datagrams: &[Vec<u8>], gso: bool, gro: bool) -> io::Result<()>;
    /// What arrived (at most `count` datagrams, GRO batches split).
    fn receive(&mut self, count: usize) -> Vec<Vec<u8>>;
}

fn pattern(seed: usize) -> Vec<Vec<u8>> {
    SIZES
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| (seed * 7 + i * 31 + j * 13) as u8).collect())
        .collect()
}

/// Turns off in `wanted` what does not deliver the datagrams intact: GRO first (plain sends),
/// then GSO (with the GRO setting found).
pub fn self_test(probe: &mut dyn Probe, wanted: Offloads) -> Offloads {
    let mut got = wanted;
    let round = |probe: &mut dyn Probe, gso: bool, gro: bool, seed: usize| {
        let sent = pattern(seed);
        probe.send(&sent, gso, gro).is_ok() && probe.receive(sent.len()) == sent
    };
    if got.gro && !round(probe, false, true, 1) {
        got.gro = false;
    }
    if got.gso && !round(probe, true, got.gro, 2) {
        got.gso = false;
    }
    got
}

/// A socket pair on loopback, each as the data path sets its own up.
pub struct LoopbackProbe {
    tx: UdpSocket,
    rx: UdpSocket,
    gro: bool,
}

impl std::fmt::Debug for LoopbackProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoopbackProbe")
    }
}

impl LoopbackProbe {
    pub fn new() -> io::Result<Self> {
        let tx = UdpSocket::bind("127.0.0.1:0")?;
        let rx = UdpSocket::bind("127.0.0.1:0")?;
        // Set up as the edge's socket is (quinn-udp's options, UDP_GRO on).
        offload_state(&rx, true)?;
        rx.set_read_timeout(Some(WAIT))?;
        tx.connect(rx.local_addr()?)?;
        Ok(LoopbackProbe { tx, rx, gro: true })
    }
}

impl Probe for LoopbackProbe {
    fn send(&mut self, datagrams: &[Vec<u8>], gso: bool, gro: bool) -> io::Result<()> {
        os::set_udp_gro(&self.rx, gro)?;
        self.gro = gro;
        let to = self.rx.local_addr()?;
        let parts: Vec<IoSlice<'_>> = datagrams.iter().map(|d| IoSlice::new(d)).collect();
        match send_datagrams(
            &self.tx,
            to,
            &parts,
            &std::sync::atomic::AtomicBool::new(gso),
        ) {
            0 => Ok(()),
            _ => Err(io::ErrorKind::Other.into()),
        }
    }

    fn receive(&mut self, count: usize) -> Vec<Vec<u8>> {
        let mut rx = Receiver::new(self.gro);
        let mut got = Vec::new();
        let end = Instant::now() + WAIT;
        while got.len() < count && Instant::now() < end {
            if rx.recv(&self.rx, true).is_err() {
                continue;
            }
            got.extend(rx.datagrams().map(|(d, _)| d.to_vec()));
        }
        got
    }
}

/// What the data path may use: `wanted`, less what the switches turn off, less what fails the
/// self-test on loopback (both off if the test cannot even be set up).
pub fn choose_offloads(wanted: Offloads) -> Offloads {
    let wanted = Offloads {
        gso: wanted.gso && crate::switch_on("N2N_RS_GSO"),
        gro: wanted.gro && crate::switch_on("N2N_RS_GRO"),
    };
    if !wanted.gso && !wanted.gro {
        return wanted;
    }
    let got = match LoopbackProbe::new() {
        Ok(mut probe) => self_test(&mut probe, wanted),
        Err(_) => Offloads {
            gso: false,
            gro: false,
        },
    };
    if wanted.gso && !got.gso {
        tracing::warn!("UDP GSO failed its self-test: sending datagram by datagram (sendmmsg)");
    }
    if wanted.gro && !got.gro {
        tracing::warn!("UDP GRO failed its self-test: receiving datagram by datagram (recvmmsg)");
    }
    got
}

/// [`choose_offloads`] for the data path's socket `udp`: GRO is turned off on it if need be,
/// and the result logged.
pub fn setup_offloads(udp: &UdpSocket, wanted: Offloads) -> Offloads {
    let got = choose_offloads(wanted);
    if !got.gro
        && let Err(e) = os::set_udp_gro(udp, false)
    {
        // No UDP_GRO on this kernel: it is off anyway.
        tracing::debug!(error = %e, "cannot turn UDP GRO off");
    }
    tracing::info!(gso = got.gso, gro = got.gro, "UDP offloads");
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel that refuses GSO sends, or corrupts GSO or GRO batches.
    struct Faulty {
        refuse_gso: bool,
        corrupt_gso: bool,
        corrupt_gro: bool,
        last: Vec<Vec<u8>>,
        last_gso: bool,
        last_gro: bool,
    }

    impl Faulty {
        fn new() -> Self {
            Faulty {
                refuse_gso: false,
                corrupt_gso: false,
                corrupt_gro: false,
                last: Vec::new(),
                last_gso: false,
                last_gro: false,
            }
        }
    }

    impl Probe for Faulty {
        fn send(&mut self, datagrams: &[Vec<u8>], gso: bool, gro: bool) -> io::Result<()> {
            if gso && self.refuse_gso {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            self.last = datagrams.to_vec();
            self.last_gso = gso;
            self.last_gro = gro;
            Ok(())
        }

        fn receive(&mut self, _count: usize) -> Vec<Vec<u8>> {
            let mut got = std::mem::take(&mut self.last);
            if (self.last_gso && self.corrupt_gso) || (self.last_gro && self.corrupt_gro) {
                got[1][100] ^= 0xff;
            }
            got
        }
    }

    const BOTH: Offloads = Offloads {
        gso: true,
        gro: true,
    };

    #[test]
    fn a_sound_kernel_keeps_both() {
        assert_eq!(self_test(&mut Faulty::new(), BOTH), BOTH);
    }

    #[test]
    fn refused_gso_falls_back_to_plain_sends() {
        let mut k = Faulty::new();
        k.refuse_gso = true;
        assert_eq!(
            self_test(&mut k, BOTH),
            Offloads {
                gso: false,
                gro: true
            }
        );
    }

    #[test]
    fn corrupting_gso_or_gro_is_turned_off() {
        let mut k = Faulty::new();
        k.corrupt_gso = true;
        assert_eq!(
            self_test(&mut k, BOTH),
            Offloads {
                gso: false,
                gro: true
            }
        );
        let mut k = Faulty::new();
        k.corrupt_gro = true;
        assert_eq!(
            self_test(&mut k, BOTH),
            Offloads {
                gso: true,
                gro: false
            }
        );
    }

    #[test]
    fn what_is_not_wanted_is_not_tested() {
        let mut k = Faulty::new();
        k.refuse_gso = true;
        let none = Offloads {
            gso: false,
            gro: false,
        };
        assert_eq!(self_test(&mut k, none), none);
    }

    #[test]
    fn this_kernel_passes_on_loopback_in_every_setting() {
        for gro in [true, false] {
            for gso in [true, false] {
                let mut probe = LoopbackProbe::new().expect("loopback");
                let sent = pattern(gro as usize * 2 + gso as usize);
                probe.send(&sent, gso, gro).expect("send");
                let got = probe.receive(sent.len());
                let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
                assert!(got == sent, "gso {gso} gro {gro}: sizes {sizes:?}");
            }
        }
        let all = Offloads {
            gso: true,
            gro: true,
        };
        assert_eq!(
            self_test(&mut LoopbackProbe::new().expect("loopback"), all),
            all
        );
    }
}
