//! `n2n-keygen`: n2n's key tool (spec §1.8, §7.10). `n2n-keygen <user> <password>` prints the
//! community.list line of that user; `n2n-keygen -F <federation>` prints the edge's `-P`
//! option for that federation. Same arguments, output and exit codes as the reference.

use std::process::ExitCode;

use n2n_crypto::keys::{key_to_text, private_key_from_text, public_key, user_private_key};

const USAGE: &str = "
n2n-keygen tool

  usage:  n2n-keygen <username> <password>

     or   n2n-keygen -F <federation name>

          outputs a line to insert at supernode's community file for user-and-
          password authentication or a command line parameter with the public
          federation key for use at edge's command line, please refer to the
          doc/Authentication.md document or the man pages for more details

";

/// The line n2n-keygen prints for its two arguments.
fn keygen_line(first: &str, second: &str) -> String {
    if first == "-F" {
        // The federation's private key hashes its name without the leading '*'.
        let key = public_key(&private_key_from_text(second));
        format!("-P {}", key_to_text(&key))
    } else {
        let key = public_key(&user_private_key(first, second));
        format!("* {first} {}", key_to_text(&key))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [first, second] => {
            println!("{}", keygen_line(first, second));
            ExitCode::SUCCESS
        }
        _ => {
            // To stderr, so batch use never mistakes it for a key.
            eprint!("{USAGE}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_examples() {
        assert_eq!(
            keygen_line("alice", "secret"),
            "* alice ROMg4FBgfOcHeWb5QKC-XQi6tvTCIx4q6-DeJ7Wrd2O"
        );
        assert_eq!(
            keygen_line("-F", "Federation"),
            "-P i0IuBFO0RC22m2Ya32uUUFUA2yfQSwsxVZ3-S5F2k7O"
        );
        assert_eq!(
            keygen_line("-F", "mynet"),
            "-P L9Rl3Ozd2D-E8AEG2DZi3Bv59ctTPfmjuN7CvysmRb0"
        );
    }

    /// The users and the federation key of the captured user/password network.
    #[test]
    fn reproduces_the_captured_keys() {
        let dir = std::env::var("N2N_VECTORS").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors").into()
        });
        let path = format!("{dir}/userpw.jsonl");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let first = text.lines().next().expect("config line");
        let config: serde_json::Value = serde_json::from_str(first).expect("json");
        let up = &config["config"]["user_password"];
        let fed = up["federation"].as_str().expect("federation");
        assert_eq!(
            keygen_line("-F", fed.trim_start_matches('*')),
            format!("-P {}", up["federation_public_key"].as_str().expect("key"))
        );
        let users = up["users"].as_object().expect("users");
        assert_eq!(users.len(), 3);
        for u in users.values() {
            let (name, pw) = (
                u["user"].as_str().expect("user"),
                u["password"].as_str().expect("pw"),
            );
            assert_eq!(
                keygen_line(name, pw),
                format!("* {name} {}", u["public_key"].as_str().expect("key"))
            );
        }
    }
}
