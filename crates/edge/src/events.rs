//! Management subscriptions (spec §8.3): `s <tag>:1:<password> <topic>` with topics `debug`
//! (copies of every event), `test` (`post.test`) and `peer` (p2p peers added and removed,
//! which n2n-route and n2n-portfwd follow). One subscriber per topic; a new one replaces it.

use std::net::SocketAddr;

use n2n_daemon::mgmt::js;
use n2n_proto::Mac;

/// Topics with their help text, in n2n's order.
pub const TOPICS: [(&str, bool, &str); 3] = [
    ("debug", false, "All events - for event debugging"),
    ("test", false, "Used only by post.test"),
    ("peer", false, "Changes to peer list"),
];

/// `peer` event actions (n2n's N2N_EVENT_PEER_*).
pub mod peer_action {
    pub const PURGE: u8 = 1;
    pub const ADD_P2P: u8 = 4;
}

#[derive(Debug, Clone)]
struct Subscriber {
    tag: String,
    addr: SocketAddr,
}

/// The subscribers and the datagrams waiting to go to them.
#[derive(Debug, Default)]
pub struct Subscriptions {
    by_topic: [Option<Subscriber>; 3],
    /// (destination, JSON line) for the shell to send.
    pub outbox: Vec<(SocketAddr, String)>,
}

fn topic_index(topic: &str) -> Option<usize> {
    TOPICS.iter().position(|t| t.0 == topic)
}

impl Subscriptions {
    /// Subscribes `addr` to `topic`; returns the replies for it (the replaced subscriber is
    /// told through the outbox).
    pub fn subscribe(&mut self, topic: &str, tag: &str, addr: SocketAddr) -> Vec<String> {
        let Some(i) = topic_index(topic) else {
            return n2n_daemon::mgmt::error(tag, "unknowntopic");
        };
        let line = |tag: &str, kind: &str| {
            format!(
                "{{\"_tag\":{},\"_type\":\"{kind}\",\"topic\":{}}}\n",
                js(tag),
                js(topic)
            )
        };
        let mut replies = Vec::new();
        if let Some(old) = self.by_topic[i].take() {
            self.outbox.push((old.addr, line(&old.tag, "unsubscribed")));
            replies.push(line(tag, "replacing"));
        }
        // n2n's code sends "subscribe" (its docs say "subscribed").
        replies.push(line(tag, "subscribe"));
        self.by_topic[i] = Some(Subscriber {
            tag: tag.to_string(),
            addr,
        });
        replies
    }

    /// The `help.events` rows' fields: topic, subscriber tag and address, help.
    pub fn help_fields(&self) -> Vec<String> {
        TOPICS
            .iter()
            .zip(&self.by_topic)
            .map(|((topic, _, help), sub)| {
                let (tag, addr) = match sub {
                    Some(s) => (s.tag.clone(), s.addr.to_string()),
                    None => (String::new(), "?:?".to_string()),
                };
                format!(
                    "\"topic\":{},\"tag\":{},\"sockaddr\":{},\"help\":{}",
                    js(topic),
                    js(&tag),
                    js(&addr),
                    js(help)
                )
            })
            .collect()
    }

    /// Queues an event for `topic`'s subscriber and the `debug` one; `fields` follow
    /// `_tag` and `_type`.
    pub fn post(&mut self, topic: &str, fields: &str) {
        let Some(i) = topic_index(topic) else { return };
        // The debug subscriber gets a copy, once even when `topic` is debug itself.
        let debug = if i == 0 {
            None
        } else {
            self.by_topic[0].as_ref()
        };
        // n2n builds one message with the topic subscriber's tag (the debug subscriber's when
        // the topic has none) and sends it to both.
        let Some(tag) = self.by_topic[i].as_ref().or(debug).map(|s| s.tag.clone()) else {
            return;
        };
        let line = format!("{{\"_tag\":{},\"_type\":\"event\",{fields}}}\n", js(&tag));
        for sub in self.by_topic[i].iter().chain(debug) {
            self.outbox.push((sub.addr, line.clone()));
        }
    }

    /// A `peer` event.
    pub fn post_peer(&mut self, action: u8, mac: Mac, sock: SocketAddr) {
        let fields = format!(
            "\"action\":{action},\"macaddr\":{},\"sockaddr\":{}",
            js(&mac.to_string()),
            js(&sock.to_string())
        );
        self.post("peer", &fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_new_subscriber_replaces_the_old_one_and_both_are_told() {
        let mut s = Subscriptions::default();
        assert_eq!(
            s.subscribe("peer", "7", addr(1000)),
            vec!["{\"_tag\":\"7\",\"_type\":\"subscribe\",\"topic\":\"peer\"}\n"]
        );
        let r = s.subscribe("peer", "8", addr(2000));
        assert_eq!(
            r[0],
            "{\"_tag\":\"8\",\"_type\":\"replacing\",\"topic\":\"peer\"}\n"
        );
        assert_eq!(
            s.outbox,
            vec![(
                addr(1000),
                "{\"_tag\":\"7\",\"_type\":\"unsubscribed\",\"topic\":\"peer\"}\n".to_string()
            )]
        );
        assert!(s.subscribe("nope", "9", addr(3000))[0].contains("unknowntopic"));
        assert!(s.help_fields()[2].contains("\"tag\":\"8\",\"sockaddr\":\"127.0.0.1:2000\""));
        assert!(s.help_fields()[0].contains("\"sockaddr\":\"?:?\""));
    }

    #[test]
    fn events_reach_the_topic_and_debug_subscribers() {
        let mut s = Subscriptions::default();
        s.post_peer(peer_action::ADD_P2P, Mac([2, 0, 0, 0, 0, 1]), addr(9));
        assert!(s.outbox.is_empty(), "nobody subscribed");
        s.subscribe("peer", "p", addr(1));
        s.subscribe("debug", "d", addr(2));
        s.outbox.clear();
        s.post_peer(peer_action::ADD_P2P, Mac([2, 0, 0, 0, 0, 1]), addr(9));
        assert_eq!(s.outbox.len(), 2);
        assert_eq!(
            s.outbox[0],
            (
                addr(1),
                "{\"_tag\":\"p\",\"_type\":\"event\",\"action\":4,\"macaddr\":\"02:00:00:00:00:01\",\"sockaddr\":\"127.0.0.1:9\"}\n".to_string()
            )
        );
        // The debug copy carries the topic subscriber's tag, as n2n's.
        assert_eq!(s.outbox[1], (addr(2), s.outbox[0].1.clone()));
        s.outbox.clear();
        s.post("test", "\"test\":\"hello\"");
        assert_eq!(
            s.outbox.len(),
            1,
            "test has no subscriber; debug gets a copy"
        );
        assert!(
            s.outbox[0].1.starts_with("{\"_tag\":\"d\""),
            "with its own tag then"
        );
    }
}
