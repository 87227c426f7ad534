//! Command-line options of the benchmark.

use std::path::PathBuf;

/// Printed for `--help` and after a bad argument.
pub const USAGE: &str = "\
usage: cargo run --release --example compare -- [--quick] [--filter NAME] [--json PATH]

  --quick         3 rounds and smaller counts: the whole run takes a few seconds (CI smoke)
  --filter NAME   run only the workloads whose name contains NAME (e.g. nop, sleep, yield)
  --json PATH     also write the results as a JSON array to PATH
  --help          print this text";

/// What the user asked for.
#[derive(Debug, Default)]
pub struct Options {
    pub quick: bool,
    pub filter: Option<String>,
    pub json: Option<PathBuf>,
}

/// The outcome of parsing: run with options, or just print the usage.
#[derive(Debug)]
pub enum Command {
    Run(Options),
    Help,
}

/// Parses the arguments that follow the program name.
///
/// Both `--flag VALUE` and `--flag=VALUE` are accepted.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = |name: &str| {
            inline_value
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--quick" => options.quick = true,
            "--filter" => options.filter = Some(value("--filter")?),
            "--json" => options.json = Some(PathBuf::from(value("--json")?)),
            "--help" | "-h" => return Ok(Command::Help),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Command::Run(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_with_separate_and_inline_values() {
        let Ok(Command::Run(options)) =
            parse_strs(&["--quick", "--filter", "nop", "--json=out.json"])
        else {
            panic!("expected options");
        };
        assert!(options.quick);
        assert_eq!(options.filter.as_deref(), Some("nop"));
        assert_eq!(options.json, Some(PathBuf::from("out.json")));
    }

    #[test]
    fn missing_value_and_unknown_flag_are_errors() {
        assert!(parse_strs(&["--json"]).is_err());
        assert!(parse_strs(&["--fast"]).is_err());
    }
}
