//! Command-line options of the benchmark.

use crate::net::spec::{SERVER_FLAG, ServerSpec};
use std::path::PathBuf;

/// Printed for `--help` and after a bad argument.
pub const USAGE: &str = "\
usage: cargo run --release --example compare -- [--quick] [--filter NAME] [--json PATH]

  --quick         3 rounds, smaller counts, short windows: a few seconds per group (CI smoke)
  --filter NAME   run only the workloads whose name contains NAME (e.g. nop, echo, idle_rss)
  --json PATH     also write the results as a JSON array to PATH
  --help          print this text";

/// What the user asked for.
#[derive(Debug, Default)]
pub struct Options {
    pub quick: bool,
    pub filter: Option<String>,
    pub json: Option<PathBuf>,
}

/// The outcome of parsing: run with options, just print the usage, or be a networking
/// workload's server process (the hidden `--net-server` form the benchmark starts itself).
#[derive(Debug)]
pub enum Command {
    Run(Options),
    Help,
    NetServer(ServerSpec),
}

/// Parses the arguments that follow the program name.
///
/// Both `--flag VALUE` and `--flag=VALUE` are accepted.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = Options::default();
    let mut args = args.into_iter().peekable();
    if args.peek().map(String::as_str) == Some(SERVER_FLAG) {
        let rest: Vec<String> = args.skip(1).collect();
        return ServerSpec::from_args(&rest).map(Command::NetServer);
    }
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
    fn hidden_server_form_parses_only_in_first_position() {
        let Ok(Command::NetServer(spec)) = parse_strs(&[
            SERVER_FLAG,
            "ringloop-io_uring",
            "idle",
            "1000",
            "4096",
            "1",
        ]) else {
            panic!("expected a server spec");
        };
        assert_eq!(spec.conns, 1000);
        assert_eq!(spec.cpu, Some(1));
        assert!(parse_strs(&[SERVER_FLAG, "tokio"]).is_err());
        assert!(parse_strs(&["--quick", SERVER_FLAG, "tokio", "echo", "1", "64", "-"]).is_err());
    }

    #[test]
    fn missing_value_and_unknown_flag_are_errors() {
        assert!(parse_strs(&["--json"]).is_err());
        assert!(parse_strs(&["--fast"]).is_err());
    }
}
