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

/// One number per colour channel, R,G,B: a mean or a standard deviation
/// of pixels on a 0-1 scale (torchvision's convention).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Channels(pub [f32; 3]);

/// Parses `R,G,B`: three finite numbers.
pub fn channels(text: &str) -> Result<Channels, String> {
    let values = text
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("'{}' is not a number", v.trim()))
        })
        .collect::<Result<Vec<f32>, String>>()?;
    let [r, g, b] = values[..] else {
        return Err(format!("{} values where R,G,B needs 3", values.len()));
    };
    Ok(Channels([r, g, b]))
}

/// Parses `R,G,B` of a standard deviation: three numbers above zero.
pub fn positive_channels(text: &str) -> Result<Channels, String> {
    let c = channels(text)?;
    match c.0.iter().find(|&&v| v <= 0.0) {
        Some(v) => Err(format!(
            "{v} is not above zero; a standard deviation divides"
        )),
        None => Ok(c),
    }
}

/// `println!` for a command's results. A reader that closed the pipe
/// (`compress ... | head -1`) ends the program quietly, with success, where
/// `println!` would panic; any other failure to write is one line and exit
/// code 2.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for a command's results, as [`outln!`] is `println!`.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_out(format_args!($($arg)*))
    };
}

/// What [`outln!`] and [`out!`] do with their text.
pub fn write_out(text: std::fmt::Arguments) {
    use std::io::Write;
    match std::io::stdout().lock().write_fmt(text) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            std::process::exit(BAD_INPUT.into())
        }
    }
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
    fn channels_take_three_numbers_and_deviations_above_zero() {
        assert_eq!(
            channels("0.485, 0.456,0.406"),
            Ok(Channels([0.485, 0.456, 0.406]))
        );
        assert!(channels("0.5,0.5").unwrap_err().contains("2 values"));
        assert!(channels("0.5,x,0.5").unwrap_err().contains("'x'"));
        assert!(channels("0.5,inf,0.5").is_err());
        assert!(positive_channels("0.2,0,0.2")
            .unwrap_err()
            .contains("above zero"));
        assert!(positive_channels("0.2,-1,0.2").is_err());
        assert_eq!(positive_channels("1,1,1"), Ok(Channels([1.0; 3])));
    }

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line("error: bad\n  value\n"), "error: bad value");
    }
}
