//! The Linux TAP device (spec §10.1) through tun-rs: named, with our MAC, address and MTU, up.

use std::sync::Arc;

use n2n_proto::{IpSubnet, Mac};
use tun_rs::{DeviceBuilder, Layer, SyncDevice};

use crate::datapath::FrameIo;

/// An open TAP device; closing it (dropping) removes the interface.
pub struct Tap(SyncDevice);

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tap")
    }
}

impl Tap {
    pub fn create(name: &str, mac: Mac, addr: IpSubnet, mtu: u16) -> std::io::Result<Arc<Tap>> {
        let dev = DeviceBuilder::new()
            .name(name)
            .layer(Layer::L2)
            .mac_addr(mac.0)
            .mtu(mtu)
            .ipv4(addr.addr, addr.prefix, None)
            .build_sync()?;
        dev.enabled(true)?;
        Ok(Arc::new(Tap(dev)))
    }
}

impl FrameIo for Tap {
    fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.recv(buf)
    }

    fn send(&self, frame: &[u8]) -> std::io::Result<usize> {
        self.0.send(frame)
    }
}
