//! Progress bars on standard error, drawn only when it is a terminal: scripts and logs get
//! nothing from them.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar for `len` steps, or a hidden one when standard error is not a terminal.
pub fn bar(len: u64, message: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{msg:>10} [{bar:30}] {pos}/{len} entries ({per_sec}, {eta} left)",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::new(len)
        .with_style(style)
        .with_message(message);
    drawn_and_ticking(bar)
}

/// A counter for a walk whose length is not known yet, or a hidden one when standard error
/// is not a terminal.
pub fn counter(message: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{spinner} {msg} {pos} entries ({per_sec})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bar = ProgressBar::no_length()
        .with_style(style)
        .with_message(message);
    drawn_and_ticking(bar)
}

/// Draws the bar now, then every 200 ms from a background thread. The first draw is not left
/// to that thread: a short operation could finish before the thread first runs, and the
/// user would see no bar at all.
fn drawn_and_ticking(bar: ProgressBar) -> ProgressBar {
    bar.tick();
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
