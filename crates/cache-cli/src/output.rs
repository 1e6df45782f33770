//! Writing results: text for people, JSON for scripts, and the shared formats of times and
//! sizes.

use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use reqwest_caching::cache_core::time::clamp_for_display;

use crate::error::CliError;

/// `text` from a store (a URL, a header) as it may reach a terminal: control characters
/// (escape sequences could rewrite the screen or the window title; C1 ones too, which UTF-8
/// header values may hold) are shown escaped, `\u{1b}`; anything else as it is.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect::<String>()
        .into()
}

/// A time for JSON: RFC 3339, UTC, milliseconds (the precision stores keep). Times past what
/// RFC 3339 can show (year 9999) show as its last second.
pub fn json_time(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(clamp_for_display(time)).to_string()
}

/// A time for people: RFC 3339 to the second, clamped as [`json_time`].
pub fn time(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(clamp_for_display(time)).to_string()
}

/// How far `time` is from `now`, for people: `3m 20s ago`, `in 1h 5m`.
pub fn relative(time: SystemTime, now: SystemTime) -> String {
    let round = |d: Duration| {
        // Two units are enough to read: drop seconds past an hour, minutes past a day.
        let secs = d.as_secs();
        let unit = match secs {
            0..3600 => 1,
            3600..86_400 => 60,
            _ => 3600,
        };
        humantime::format_duration(Duration::from_secs(secs / unit * unit)).to_string()
    };
    match now.duration_since(time) {
        Ok(past) if past.as_secs() == 0 => "now".to_owned(),
        Ok(past) => format!("{} ago", round(past)),
        Err(future) => format!("in {}", round(future.duration())),
    }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `12.0 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Display only: the float's rounding is fine for a one-decimal figure.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Prints one line on standard output.
///
/// # Errors
///
/// [`CliError::Io`] when standard output is closed (`ls | head`: see
/// [`CliError::is_closed_output`]); `println!` panicked there.
pub fn line(args: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    writeln!(std::io::stdout().lock(), "{args}").map_err(|source| CliError::Io {
        context: "writing to standard output".to_owned(),
        source,
    })
}

/// Prints `value` as JSON on standard output.
///
/// # Errors
///
/// [`CliError::Io`] when standard output is closed.
pub fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .map_err(|source| CliError::Io {
            context: "writing to standard output".to_owned(),
            source,
        })
}

/// Asks on the terminal before deleting; `yes` (the `--yes` flag) answers for the operator.
///
/// # Errors
///
/// [`CliError::NotConfirmed`] when the answer is not yes, or standard input is not a
/// terminal to ask on.
pub fn confirm(question: &str, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::NotConfirmed(format!(
            "not confirmed: {question} (standard input is not a terminal to ask on: pass \
             --yes); nothing deleted"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let read = std::io::stdin().read_line(&mut answer);
    match answer.trim() {
        "y" | "Y" | "yes" | "YES" | "Yes" if read.is_ok() => Ok(()),
        _ => Err(CliError::NotConfirmed(
            "not confirmed; nothing deleted".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 * 1024 * 1024), "5.0 MiB");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(relative(now - Duration::from_secs(200), now), "3m 20s ago");
        assert_eq!(
            relative(now + Duration::from_secs(3900 + 7), now),
            "in 1h 5m"
        );
        assert_eq!(relative(now, now), "now");
        assert_eq!(time(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            json_time(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
    }

    /// An entry may expire past year 9999 (an origin's `Expires`, a hand-edited store): it
    /// lists at RFC 3339's last second rather than panicking the command.
    #[test]
    fn times_past_year_9999_show_as_its_last_second() {
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(time(far), "9999-12-31T23:59:59Z");
        assert_eq!(json_time(far), "9999-12-31T23:59:59.000Z");
        let first_too_late = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert_eq!(time(first_too_late), "9999-12-31T23:59:59Z");
    }
}
