//! The Linux TAP device (spec §10.1) through tun-rs: named, with our MAC, address and MTU, up.

use std::net::Ipv4Addr;
use std::sync::Arc;

use n2n_proto::{IpSubnet, Mac};
use tun_rs::{DeviceBuilder, Layer, SyncDevice};

use crate::datapath::FrameIo;

/// An open TAP device; closing it (dropping) removes the interface.
pub struct Tap {
    dev: SyncDevice,
    vnet_hdr: bool,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tap")
    }
}

impl Tap {
    /// With `offload`, asks for TSO/USO super-frames and checksum offload (vnet_hdr); a
    /// kernel that refuses gets a plain TAP.
    pub fn create(
        name: &str,
        mac: Mac,
        addr: IpSubnet,
        mtu: u16,
        offload: bool,
    ) -> std::io::Result<Arc<Tap>> {
        let build = |offload| {
            let mut b = DeviceBuilder::new()
                .name(name)
                .layer(Layer::L2)
                .mac_addr(mac.0)
                .mtu(mtu)
                .offload(offload);
            // 0.0.0.0 (`-a dhcp:0.0.0.0`): no address until a DHCP client sets one.
            if !addr.addr.is_unspecified() {
                b = b.ipv4(addr.addr, addr.prefix, None);
            }
            b.build_sync()
        };
        let (dev, vnet_hdr) = match build(offload) {
            Ok(dev) => (dev, offload),
            Err(e) if offload => {
                tracing::info!(error = %e, "TAP offloads unavailable; one frame per read");
                (build(false)?, false)
            }
            Err(e) => return Err(e),
        };
        dev.enabled(true)?;
        Ok(Arc::new(Tap { dev, vnet_hdr }))
    }

    /// The interface's IPv4 address now, if any.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        n2n_daemon::os::interface_ipv4(&self.dev.name().ok()?)
            .ok()
            .flatten()
    }
}

impl FrameIo for Tap {
    fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.dev.recv(buf)
    }

    fn send(&self, frame: &[u8]) -> std::io::Result<usize> {
        self.dev.send(frame)
    }

    fn vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(std::os::fd::AsRawFd::as_raw_fd(&self.dev))
    }
}
