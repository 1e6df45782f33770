//! A bar chart of hit latency per store, beside its floor and the peer: people read a chart
//! faster than a table.

use std::path::Path;

use plotters::prelude::*;

/// One group of bars: a store's floor, ours, and the peer where there is one (µs).
pub(crate) struct Group {
    pub(crate) store: &'static str,
    pub(crate) floor: f64,
    pub(crate) ours: f64,
    pub(crate) peer: Option<(&'static str, f64)>,
}

const FLOOR: RGBColor = RGBColor(170, 170, 170);
const OURS: RGBColor = RGBColor(31, 119, 180);
const PEER: RGBColor = RGBColor(214, 96, 39);

/// Writes the chart as SVG to `path`.
pub(crate) fn hits_svg(path: &Path, title: &str, groups: &[Group]) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = SVGBackend::new(path, (760, 380)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let top = groups
        .iter()
        .flat_map(|g| [g.floor, g.ours, g.peer.map_or(0.0, |p| p.1)])
        .fold(1.0_f64, f64::max)
        * 1.15;
    let slots = groups.len() * 4;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0..slots, 0.0..top)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(slots)
        // One label per group, under its middle bar.
        .x_label_formatter(&|slot| match (slot % 4, groups.get(slot / 4)) {
            (1, Some(group)) => group.store.to_owned(),
            _ => String::new(),
        })
        .y_desc("hit latency, median (µs)")
        .draw()
        .map_err(|e| err(&e))?;
    let bar = |slot: usize, value: f64, color: RGBColor| {
        Rectangle::new([(slot, 0.0), (slot + 1, value)], color.filled())
    };
    let label = |slot: usize, value: f64| {
        Text::new(
            format!("{value:.1}"),
            (slot, value + top * 0.02),
            ("sans-serif", 12),
        )
    };
    for (i, group) in groups.iter().enumerate() {
        let at = i * 4;
        chart
            .draw_series([bar(at, group.floor, FLOOR)])
            .map_err(|e| err(&e))?;
        chart
            .draw_series([label(at, group.floor)])
            .map_err(|e| err(&e))?;
        chart
            .draw_series([bar(at + 1, group.ours, OURS)])
            .map_err(|e| err(&e))?;
        chart
            .draw_series([label(at + 1, group.ours)])
            .map_err(|e| err(&e))?;
        if let Some((_, peer)) = group.peer {
            chart
                .draw_series([bar(at + 2, peer, PEER)])
                .map_err(|e| err(&e))?;
            chart
                .draw_series([label(at + 2, peer)])
                .map_err(|e| err(&e))?;
        }
    }
    // The legend, drawn by hand: one swatch per kind of bar.
    let peers: Vec<&str> = groups.iter().filter_map(|g| g.peer.map(|p| p.0)).collect();
    let legend = [
        ("floor (least work possible)".to_owned(), FLOOR),
        ("reqwest-caching".to_owned(), OURS),
        (format!("http-cache-reqwest ({})", peers.join(", ")), PEER),
    ];
    for (i, (name, color)) in legend.iter().enumerate() {
        let y = 40 + i as i32 * 18;
        root.draw(&Rectangle::new([(560, y), (572, y + 12)], color.filled()))
            .map_err(|e| err(&e))?;
        root.draw(&Text::new(name.as_str(), (578, y), ("sans-serif", 12)))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
