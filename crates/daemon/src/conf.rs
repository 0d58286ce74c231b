//! n2n's configuration-file syntax (spec §2.1–2.2), shared by `edge` and `supernode`: one
//! option per line, turned into the command-line words the option parser then reads.

/// How the rest of a line becomes the option's argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgStyle {
    /// edge: the whole rest of the line (values may contain spaces).
    RestOfLine,
    /// supernode: the next space- or tab-delimited token; anything after it is ignored.
    NextToken,
}

fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'')
}

/// Turns a config file's text into argument words, line by line: strip whitespace and
/// quotes, skip lines shorter than 2 characters or starting with `#`, split the option from
/// its argument at the first space, tab or `=`.
pub fn file_to_args(text: &str, style: ArgStyle) -> Vec<String> {
    let mut args = Vec::new();
    for raw in text.lines() {
        let line = trim(raw);
        if line.len() < 2 || line.starts_with('#') {
            continue;
        }
        let line = line.trim_start_matches([' ', '\t', '=']);
        let (opt, rest) = match line.find([' ', '\t', '=']) {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, ""),
        };
        if !opt.starts_with('-') {
            continue;
        }
        args.push(opt.to_string());
        let value = match style {
            ArgStyle::RestOfLine => trim(rest),
            ArgStyle::NextToken => trim(rest).split([' ', '\t']).next().unwrap_or(""),
        };
        if !value.is_empty() {
            args.push(value.to_string());
        }
    }
    args
}

/// The words the option parser should see: if the first argument after the program name is a
/// file (does not start with `-`), its options come first, then the rest of the command line.
pub fn expand_args(argv: Vec<String>, style: ArgStyle) -> Result<Vec<String>, String> {
    let mut it = argv.into_iter();
    let prog = it.next().unwrap_or_default();
    let rest: Vec<String> = it.collect();
    let mut out = vec![prog];
    match rest.first() {
        Some(first) if !first.starts_with('-') => {
            let text = std::fs::read_to_string(first)
                .map_err(|e| format!("cannot read config file {first}: {e}"))?;
            out.extend(file_to_args(&text, style));
            out.extend(rest.into_iter().skip(1));
        }
        _ => out.extend(rest),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n2n_line_rules() {
        let text = "# comment\n-c=mynet\n  --community mynet2 \n-k \"my secret key\"\n-A3\n-f\nmynet\n-p 7777 ignored\nx\n";
        assert_eq!(
            file_to_args(text, ArgStyle::RestOfLine),
            [
                "-c",
                "mynet",
                "--community",
                "mynet2",
                "-k",
                "my secret key",
                "-A3",
                "-f",
                "-p",
                "7777 ignored"
            ]
        );
        assert_eq!(
            file_to_args(text, ArgStyle::NextToken),
            [
                "-c",
                "mynet",
                "--community",
                "mynet2",
                "-k",
                "my",
                "-A3",
                "-f",
                "-p",
                "7777"
            ]
        );
    }

    #[test]
    fn spaces_around_equals_are_taken_literally() {
        assert_eq!(
            file_to_args("-c = mynet", ArgStyle::RestOfLine),
            ["-c", "= mynet"]
        );
        assert_eq!(file_to_args("-c = mynet", ArgStyle::NextToken), ["-c", "="]);
    }
}
