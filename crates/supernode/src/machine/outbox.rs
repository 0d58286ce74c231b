//! Datagrams the machine asks the shell to send. Buffers are reused between calls, so a
//! steady stream of relays allocates nothing.

use std::net::SocketAddr;

/// One datagram and everyone it goes to.
#[derive(Debug, Default)]
pub struct Transmit {
    pub data: Vec<u8>,
    pub dests: Vec<SocketAddr>,
}

/// The machine's output of one call.
#[derive(Debug, Default)]
pub struct Outbox {
    items: Vec<Transmit>,
    len: usize,
}

impl Outbox {
    /// A cleared transmit slot, reusing an earlier one's buffers.
    pub(crate) fn slot(&mut self) -> &mut Transmit {
        if self.len == self.items.len() {
            self.items.push(Transmit {
                data: Vec::with_capacity(2048),
                dests: Vec::with_capacity(4),
            });
        }
        let t = &mut self.items[self.len];
        self.len += 1;
        t.data.clear();
        t.dests.clear();
        t
    }

    /// Drops the slot taken last (nothing to send after all).
    pub(crate) fn unslot(&mut self) {
        self.len = self.len.saturating_sub(1);
    }

    /// The bytes of the transmit added last (to append a trailer).
    pub(crate) fn last_data_mut(&mut self) -> Option<&mut Vec<u8>> {
        self.len.checked_sub(1).map(|i| &mut self.items[i].data)
    }

    pub fn transmits(&self) -> &[Transmit] {
        &self.items[..self.len]
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
