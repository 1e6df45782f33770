//! The checks a run is judged by: each a ratio against its floor and a target, printed as a
//! table with a pass/fail column and written as Markdown for the README.

use std::fmt::Write as _;

/// Which side of the target passes.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    AtMost(f64),
    AtLeast(f64),
}

impl Target {
    fn passes(self, ratio: f64) -> bool {
        // A floor at or below zero (a miss floor that added nothing measurable over plain
        // reqwest in a noisy run) gives no ratio to judge: not a pass.
        if !ratio.is_finite() || ratio <= 0.0 {
            return false;
        }
        match self {
            Target::AtMost(limit) => ratio <= limit,
            Target::AtLeast(limit) => ratio >= limit,
        }
    }

    fn text(self) -> String {
        match self {
            Target::AtMost(limit) => format!("≤ {limit}"),
            Target::AtLeast(limit) => format!("≥ {limit}"),
        }
    }
}

/// One line of the table: what was measured, ours against the floor, in one unit.
pub(crate) struct Check {
    pub(crate) measure: String,
    pub(crate) ours: f64,
    pub(crate) floor: f64,
    pub(crate) unit: &'static str,
    pub(crate) target: Option<Target>,
    /// The ratio as measured round by round (see [`crate::rounds`]), where the row was; else
    /// the ratio is `ours` over `floor`.
    pub(crate) paired: Option<f64>,
}

impl Check {
    pub(crate) fn ratio(&self) -> f64 {
        if let Some(paired) = self.paired {
            return paired;
        }
        if self.floor == 0.0 {
            f64::NAN
        } else {
            self.ours / self.floor
        }
    }

    /// The line's columns as text, for the terminal and the Markdown table alike.
    fn cells(&self) -> [String; 6] {
        [
            self.measure.clone(),
            value(self.ours, self.unit),
            value(self.floor, self.unit),
            ratio_text(self.ratio()),
            self.target.map(Target::text).unwrap_or_else(|| "—".into()),
            self.verdict().to_owned(),
        ]
    }

    /// "pass", "FAIL", or "—" for a line without a target.
    pub(crate) fn verdict(&self) -> &'static str {
        match self.target {
            None => "—",
            Some(target) if target.passes(self.ratio()) => "pass",
            Some(_) => "FAIL",
        }
    }
}

/// The ratio, or "—" where there is none to read: a floor at or below zero (a miss floor
/// that added nothing measurable over plain reqwest in a noisy run) makes any quotient
/// meaningless, a negative one most of all.
fn ratio_text(ratio: f64) -> String {
    if ratio.is_finite() && ratio > 0.0 {
        format!("{ratio:.2}")
    } else {
        "—".into()
    }
}

fn value(v: f64, unit: &str) -> String {
    match unit {
        "hits/s" => format!("{:.0} k", v / 1000.0),
        _ => format!("{v:.2} {unit}"),
    }
}

/// The checks as a Markdown table.
pub(crate) fn markdown(checks: &[Check]) -> String {
    let mut out = String::from("| measure | ours | floor | ratio | target | |\n");
    out.push_str("|---|---:|---:|---:|---:|---|\n");
    for check in checks {
        let [measure, ours, floor, ratio, target, verdict] = check.cells();
        let _ = writeln!(
            out,
            "| {measure} | {ours} | {floor} | {ratio} | {target} | {verdict} |"
        );
    }
    out
}

/// The checks as an aligned text table for the terminal.
pub(crate) fn print(checks: &[Check]) {
    println!(
        "\n{:<58} {:>12} {:>12} {:>7} {:>7}  result",
        "ratios (one run)", "ours", "floor", "ratio", "target"
    );
    for check in checks {
        let [measure, ours, floor, ratio, target, verdict] = check.cells();
        println!("{measure:<58} {ours:>12} {floor:>12} {ratio:>7} {target:>7}  {verdict}");
    }
    let failed = checks.iter().filter(|c| c.verdict() == "FAIL").count();
    let with_target = checks.iter().filter(|c| c.target.is_some()).count();
    println!("{} of {with_target} targets met", with_target - failed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn miss_check(ours: f64, floor: f64) -> Check {
        Check {
            measure: "memory miss, time added over plain, vs memory floor's".into(),
            ours,
            floor,
            unit: "µs",
            target: Some(Target::AtMost(1.5)),
            paired: None,
        }
    }

    /// A floor that added nothing measurable (at or below zero) gives no ratio: the table
    /// shows none rather than a negative quotient, and the line fails.
    #[test]
    fn a_floor_at_or_below_zero_shows_no_ratio_and_fails() {
        for floor in [-0.15, 0.0] {
            let check = miss_check(3.2, floor);
            let [_, _, _, ratio, _, verdict] = check.cells();
            assert_eq!((ratio.as_str(), verdict.as_str()), ("—", "FAIL"), "{floor}");
        }
        let [_, _, _, ratio, _, verdict] = miss_check(3.0, 2.5).cells();
        assert_eq!((ratio.as_str(), verdict.as_str()), ("1.20", "pass"));
    }
}
