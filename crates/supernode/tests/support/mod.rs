//! What the vector replay tests share: where the captures are and how their lines read.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use n2n_supernode::community_list::CommunityList;
use serde_json::Value;

/// ../shared/vectors beside the repository, or N2N_VECTORS.
pub fn vectors_dir() -> PathBuf {
    std::env::var("N2N_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        })
}

/// The node name of a `"<node> <ip>:<port>"` endpoint.
pub fn node(endpoint: &str) -> &str {
    endpoint.split_whitespace().next().expect("node name")
}

/// The socket of a `"<node> <ip>:<port>"` endpoint.
pub fn addr(endpoint: &str) -> SocketAddr {
    endpoint
        .split_whitespace()
        .nth(1)
        .expect("node ip:port")
        .parse()
        .expect("socket address")
}

/// A line's capture time in µs.
pub fn micros(v: &Value) -> u64 {
    (v["t"].as_f64().expect("t") * 1e6).round() as u64
}

/// A vector file: its config line and its datagram lines; fails loudly if it is missing.
pub fn load(name: &str) -> (Value, Vec<Value>) {
    let file = vectors_dir().join(name);
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("vector file {} is missing: {e}", file.display()));
    let mut lines = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"));
    let config = lines.next().expect("config")["config"].clone();
    (config, lines.collect())
}

/// The community list a supernode of the config was started with.
pub fn community_list(node: &Value) -> CommunityList {
    let text = node["community_list"]
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v.as_str().expect("line"))
        .collect::<Vec<_>>()
        .join("\n");
    CommunityList::parse(&text)
}
