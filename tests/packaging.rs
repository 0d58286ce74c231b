//! The drop-in story: the example configs parse with the real binaries' parsers, `scripts/install`
//! puts every file where the units expect it, and systemd accepts the three units.

use std::path::{Path, PathBuf};
use std::process::Command;

use n2n_edge::cli::EdgeConfig;
use n2n_supernode::cli::Args as SupernodeArgs;
use n2n_supernode::community_list::CommunityList;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

#[test]
fn example_configs_parse_with_the_real_parsers() {
    let dir = repo().join("etc-n2n-examples");
    let edge = dir.join("edge.conf").to_string_lossy().into_owned();
    let cfg = EdgeConfig::from_argv(vec!["edge".into(), edge], |_| None)
        .map_err(|e| format!("{e:?}"))
        .expect("edge.conf parses");
    assert_eq!(cfg.community.text(), "mynetwork");
    assert_eq!(cfg.device, "n2n0");
    assert_eq!(cfg.local.port(), 50001);
    assert_eq!(cfg.supernodes[0].to_string(), "7.8.9.0:7777");
    let sn = dir.join("supernode.conf").to_string_lossy().into_owned();
    let args = SupernodeArgs::parse_from_argv(vec!["supernode".into(), sn])
        .map_err(|e| format!("{e:?}"))
        .expect("supernode.conf parses");
    assert_eq!(args.listen().map(|a| a.port()), Ok(7777));
    let list = CommunityList::load(&dir.join("community.list").to_string_lossy())
        .expect("community.list parses");
    assert_eq!(list.fixed.len(), 2);
    assert_eq!(list.patterns.len(), 1);
    assert!(
        list.skipped.is_empty(),
        "lines the parser skipped: {:?}",
        list.skipped
    );
}

#[test]
fn install_into_a_staging_root_and_verify_the_units() {
    let root = std::env::temp_dir().join(format!("n2n-rs-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    // An operator's existing configuration must survive.
    std::fs::create_dir_all(root.join("etc/n2n")).expect("etc");
    std::fs::write(root.join("etc/n2n/edge.conf"), "-c=mine\n").expect("existing conf");
    let status = Command::new("bash")
        .arg(repo().join("scripts/install"))
        .env("DESTDIR", &root)
        .env("N2N_BIN", bin_dir())
        .status()
        .expect("scripts/install runs");
    assert!(status.success());
    for f in [
        "usr/sbin/edge",
        "usr/sbin/supernode",
        "usr/sbin/n2n-keygen",
        "lib/systemd/system/edge.service",
        "lib/systemd/system/edge@.service",
        "lib/systemd/system/supernode.service",
        "etc/n2n/edge.conf.sample",
        "etc/n2n/supernode.conf",
        "etc/n2n/community.list",
        "usr/share/man/man8/edge.8",
        "usr/share/man/man1/supernode.1",
        "usr/share/bash-completion/completions/edge",
    ] {
        assert!(root.join(f).exists(), "{f} was not installed");
    }
    assert_eq!(
        std::fs::read_to_string(root.join("etc/n2n/edge.conf")).expect("conf"),
        "-c=mine\n"
    );
    // Configuration holds keys: nothing installed there is world-readable.
    use std::os::unix::fs::PermissionsExt;
    for f in ["edge.conf.sample", "supernode.conf", "community.list"] {
        let mode = std::fs::metadata(root.join("etc/n2n").join(f))
            .expect("installed")
            .permissions()
            .mode();
        assert_eq!(mode & 0o007, 0, "{f} is world-readable ({mode:o})");
    }
    // Every path a unit's ExecStart names exists in the staging root.
    for unit in ["edge.service", "edge@.service", "supernode.service"] {
        let text =
            std::fs::read_to_string(root.join("lib/systemd/system").join(unit)).expect("unit");
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("ExecStart");
        let binary = exec.split_whitespace().next().expect("binary");
        assert!(
            root.join(binary.trim_start_matches('/')).exists(),
            "{unit}: {binary} missing"
        );
        // The sandbox the hardening review asked for (MDWE on the edges: no JIT there).
        let mut wanted = vec![
            "Restart=on-failure",
            "SystemCallFilter=@system-service",
            "SystemCallArchitectures=native",
            "RestrictNamespaces=yes",
            "ProtectKernelLogs=yes",
            "ProtectClock=yes",
            "RestrictSUIDSGID=yes",
            "UMask=0077",
            "NoNewPrivileges=yes",
        ];
        if unit.starts_with("edge") {
            wanted.push("MemoryDenyWriteExecute=yes");
        }
        for line in wanted {
            assert!(text.lines().any(|l| l == line), "{unit} lacks {line}");
        }
    }
    let man = std::fs::read_to_string(root.join("usr/share/man/man8/edge.8")).expect("man page");
    assert!(
        man.contains("community") && man.contains("1290"),
        "the man page lacks options or defaults"
    );
    match Command::new("systemd-analyze").arg("--version").output() {
        Ok(_) => {
            // Verify copies whose ExecStart points into the staging root (systemd-analyze
            // checks that the binaries exist); the template is checked as an instance.
            let check = root.join("verify");
            std::fs::create_dir_all(&check).expect("verify dir");
            let mut paths = Vec::new();
            for (unit, name) in [
                ("edge.service", "edge.service"),
                ("edge@.service", "edge@test.service"),
                ("supernode.service", "supernode.service"),
            ] {
                let text = std::fs::read_to_string(root.join("lib/systemd/system").join(unit))
                    .expect("unit");
                let text = text.replace("/usr/sbin/", &format!("{}/usr/sbin/", root.display()));
                std::fs::write(check.join(name), text).expect("unit copy");
                paths.push(check.join(name));
            }
            let out = Command::new("systemd-analyze")
                .arg("verify")
                .args(&paths)
                .output()
                .expect("systemd-analyze");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && text.trim().is_empty(),
                "systemd-analyze verify: {text}"
            );
        }
        Err(_) => assert!(
            std::env::var_os("CI").is_none(),
            "CI must have systemd-analyze (package systemd)"
        ),
    }
    let status = Command::new("bash")
        .arg(repo().join("scripts/install"))
        .arg("--uninstall")
        .env("DESTDIR", &root)
        .status()
        .expect("uninstall");
    assert!(status.success());
    assert!(!root.join("usr/sbin/edge").exists());
    let _ = std::fs::remove_dir_all(&root);
}
