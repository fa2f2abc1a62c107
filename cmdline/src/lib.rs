//! What every squeezebox command line shares, so that they all treat bad
//! input alike: one line on stderr and exit code 2, never a panic or a page
//! of usage.
//!
//! Never depends on libtorch (`tch`), tract or another squeezebox crate:
//! every command links it, `label-image` included.

use std::process::ExitCode;

use clap::builder::RangedU64ValueParser;
use clap::Parser;

/// The exit code for bad input: a bad flag, file, image or data set.
pub const BAD_INPUT: u8 = 2;

/// Parses the command line. `--help` and `--version` print and give
/// `Err(SUCCESS)`; a bad command line prints clap's first paragraph (the
/// problem, not the advice after it) as one line and gives `Err(2)`.
pub fn parse<T: Parser>() -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        if e.use_stderr() {
            let text = e.render().to_string();
            eprintln!(
                "{}",
                one_line(text.split("\n\n").next().unwrap_or_default())
            );
            ExitCode::from(BAD_INPUT)
        } else {
            // Nothing is left to do if stdout is gone.
            let _ = e.print();
            ExitCode::SUCCESS
        }
    })
}

/// `text` with every run of whitespace, newlines included, as one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A value parser for counts, which must be at least 1.
pub fn count<T>() -> RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
    <T as TryFrom<u64>>::Error: std::error::Error + Send + Sync + 'static,
{
    RangedU64ValueParser::new().range(1..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Args {
        #[arg(long, value_parser = count::<usize>())]
        runs: usize,
    }

    #[test]
    fn counts_start_at_one() {
        assert_eq!(Args::try_parse_from(["x", "--runs", "3"]).unwrap().runs, 3);
        for bad in ["0", "-1", "two"] {
            assert!(Args::try_parse_from(["x", "--runs", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line("error: bad\n  value\n"), "error: bad value");
    }
}
