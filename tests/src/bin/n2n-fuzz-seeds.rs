//! Writes the fuzz targets' seed corpora from the captured reference datagrams
//! (../shared/vectors, or N2N_VECTORS): `n2n-fuzz-seeds <corpus folder>` makes one folder per
//! target. Seeds are made at run time and never committed (the vectors stay where they are).

use std::path::{Path, PathBuf};

use n2n_proto::Datagram;

/// A seed of a target whose input is pieces announced by little-endian u16 lengths.
fn piece(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

struct Seeds {
    dir: PathBuf,
    count: usize,
}

impl Seeds {
    fn put(&mut self, target: &str, bytes: &[u8]) -> std::io::Result<()> {
        let d = self.dir.join(target);
        std::fs::create_dir_all(&d)?;
        self.count += 1;
        std::fs::write(d.join(format!("seed-{:05}", self.count)), bytes)
    }
}

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: n2n-fuzz-seeds <corpus folder>");
        std::process::exit(2);
    };
    let vectors = std::env::var("N2N_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"));
    let mut s = Seeds {
        dir: PathBuf::from(dir),
        count: 0,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&vectors)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path)?;
        let mut lines = text.lines();
        let config: serde_json::Value =
            serde_json::from_str(lines.next().unwrap_or("{}")).unwrap_or_default();
        let cipher = config["config"]["cipher"]["id"].as_u64().unwrap_or(1) as u8;
        let (mut run, mut sn_run) = (vec![0u8], vec![0u8]);
        // GRO: the frames as they are (mode 0), and as one TCP flow's payloads (mode 1).
        let (mut frames, mut flow) = (vec![0u8], vec![1u8]);
        for line in lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            let field = |k: &str| v[k].as_str().map(hex);
            if let Some(d) = field("hex") {
                s.put("datagram", &d)?;
                s.put("header", &d)?;
                s.put(
                    "tcp_framing",
                    &[&[0][..], &(d.len() as u16).to_be_bytes(), &d].concat(),
                )?;
                // Each piece: source (the supernode or edge1), then the datagram.
                let from = u8::from(!v["src"].as_str().unwrap_or("").starts_with("sn"));
                piece(&mut run, &[&[from][..], &d].concat());
                piece(&mut sn_run, &[&[from, 1][..], &d].concat());
            }
            if let Some(plain) = field("hdr_plain_hex") {
                s.put("datagram", &plain)?;
                if let Ok((_, payload)) = Datagram::decode(&plain)
                    && !payload.is_empty()
                {
                    // The transform target's first byte picks one of its seven transforms.
                    let tid = [1u8, 2, 3, 4, 5, 96, 97]
                        .iter()
                        .position(|&t| t == cipher)
                        .unwrap_or(0) as u8;
                    s.put("transform_open", &[&[tid, 0][..], payload].concat())?;
                }
            }
            if let Some(c) = field("compressed_hex") {
                let id = if path.to_string_lossy().contains("zstd") {
                    3
                } else {
                    2
                };
                s.put("compress", &[&[id][..], &c].concat())?;
            }
            if let Some(f) = field("frame_hex") {
                s.put("offload_segment", &[&[0u8; 10][..], &f].concat())?;
                piece(&mut frames, &f);
                piece(&mut flow, &[&[0u8][..], &f].concat());
            }
        }
        s.put("tunnel", &run)?;
        s.put("supernode", &sn_run)?;
        s.put("gro", &frames)?;
        s.put("gro", &flow)?;
    }
    // Text inputs: the example configuration files and management requests.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc-n2n-examples");
    for (which, name) in [
        (0u8, "edge.conf"),
        (1, "supernode.conf"),
        (2, "community.list"),
    ] {
        if let Ok(text) = std::fs::read(examples.join(name)) {
            s.put("config", &[&[which][..], &text].concat())?;
        }
    }
    for req in [
        "r 1 help",
        "r 2 edges",
        "r 3 communities",
        "r 4 supernodes",
        "r 5 timestamps",
        "r 6 packetstats",
        "r 7 verbose",
        "w 8:1:n2n verbose 3",
        "w 9 stop",
        "s 10 peer",
        "r 11:1:n2n info",
        "r 12 drops",
        "reload_communities",
        "help",
    ] {
        s.put("mgmt", req.as_bytes())?;
    }
    println!("{} seeds in {}", s.count, s.dir.display());
    Ok(())
}
