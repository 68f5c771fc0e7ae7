//! The SVG plot of `shmsg compare`: round trip and streaming throughput
//! against message size, one line per transport, both axes logarithmic,
//! with the physical references dashed and the machine named in the title.
//! Written by hand: the format needs a few elements only.

use std::fmt::Write as _;

use super::types::{Report, Transport};
use super::units::{bytes_rate_name, size_name, time_name};

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 560.0;
const PANEL_W: f64 = 400.0;
const PANEL_H: f64 = 330.0;
const TOP: f64 = 100.0;
const LEFTS: [f64; 2] = [80.0, 580.0];

fn color(t: Transport) -> &'static str {
    match t {
        Transport::Shm => "#d62728",
        Transport::ShmInPlace => "#e377c2",
        Transport::ShmBatch => "#17becf",
        Transport::Mpsc => "#8c564b",
        Transport::MpscInPlace => "#bcbd22",
        Transport::Unix => "#1f77b4",
        Transport::Seqpacket => "#2ca02c",
        Transport::Pipe => "#9467bd",
        Transport::Tcp => "#ff7f0e",
        Transport::RefRing => "#000000",
    }
}

/// A logarithmic axis from `10^lo` to `10^hi` onto pixels `a ..= b`.
#[derive(Clone, Copy)]
struct Axis {
    lo: f64,
    hi: f64,
    a: f64,
    b: f64,
}

impl Axis {
    /// Covers `values` (all positive), widened to whole decades.
    fn covering(values: &[f64], a: f64, b: f64) -> Axis {
        let logs: Vec<f64> = values
            .iter()
            .filter(|v| v.is_finite() && **v > 0.0)
            .map(|v| v.log10())
            .collect();
        let lo = logs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() {
            (lo.floor(), hi.ceil().max(lo.floor() + 1.0))
        } else {
            (0.0, 1.0)
        };
        Axis { lo, hi, a, b }
    }

    fn at(&self, v: f64) -> f64 {
        let t = (v.log10() - self.lo) / (self.hi - self.lo);
        self.a + t * (self.b - self.a)
    }
}

fn text(out: &mut String, x: f64, y: f64, anchor: &str, size: u32, body: &str) {
    let escaped = body
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let _ = writeln!(
        out,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}">{escaped}</text>"#
    );
}

/// One panel: a title, axes with ticks, a line per transport, a reference.
struct Series {
    transport: Transport,
    points: Vec<(f64, f64)>,
}

#[allow(clippy::too_many_arguments)]
fn panel(
    out: &mut String,
    left: f64,
    title: &str,
    sizes: &[usize],
    series: &[Series],
    reference: &[(f64, f64)],
    reference_name: &str,
    y_label: impl Fn(f64) -> String,
) {
    let bottom = TOP + PANEL_H;
    let x = Axis::covering(
        &sizes.iter().map(|&s| s as f64).collect::<Vec<_>>(),
        left,
        left + PANEL_W,
    );
    let mut ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    ys.extend(reference.iter().map(|p| p.1));
    let y = Axis::covering(&ys, bottom, TOP);
    text(out, left + PANEL_W / 2.0, TOP - 14.0, "middle", 15, title);
    let _ = writeln!(
        out,
        r##"<rect x="{left}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#444"/>"##
    );
    // Decade grid lines and labels on the y axis.
    let mut decade = y.lo;
    while decade <= y.hi + 1e-9 {
        let v = 10f64.powf(decade);
        let py = y.at(v);
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/>"##,
            left + PANEL_W
        );
        text(out, left - 6.0, py + 4.0, "end", 11, &y_label(v));
        decade += 1.0;
    }
    // The measured sizes on the x axis.
    for &size in sizes {
        let px = x.at(size as f64);
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{bottom}" x2="{px:.1}" y2="{:.1}" stroke="#444"/>"##,
            bottom + 5.0
        );
        text(out, px, bottom + 18.0, "middle", 10, &size_name(size));
    }
    text(
        out,
        left + PANEL_W / 2.0,
        bottom + 38.0,
        "middle",
        12,
        "message size (log scale)",
    );
    if !reference.is_empty() {
        let points: Vec<String> = if reference.len() == 1 {
            let (_, v) = reference[0];
            vec![
                format!("{:.1},{:.1}", left, y.at(v)),
                format!("{:.1},{:.1}", left + PANEL_W, y.at(v)),
            ]
        } else {
            reference
                .iter()
                .map(|&(s, v)| format!("{:.1},{:.1}", x.at(s), y.at(v)))
                .collect()
        };
        let _ = writeln!(
            out,
            r##"<polyline points="{}" fill="none" stroke="#888" stroke-width="1.5" stroke-dasharray="6,4"/>"##,
            points.join(" ")
        );
        let label_y = y.at(reference[0].1) - 6.0;
        text(out, left + 6.0, label_y, "start", 10, reference_name);
    }
    for s in series {
        if s.points.is_empty() {
            continue;
        }
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(sz, v)| format!("{:.1},{:.1}", x.at(sz), y.at(v)))
            .collect();
        let c = color(s.transport);
        // The reference ring is a reference: thin and dotted.
        let style = if s.transport == Transport::RefRing {
            r#"stroke-width="1.5" stroke-dasharray="2,3""#
        } else {
            r#"stroke-width="2""#
        };
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{c}" {style}/>"#,
            points.join(" ")
        );
        for p in &points {
            if let Some((px, py)) = p.split_once(',') {
                let _ = writeln!(out, r#"<circle cx="{px}" cy="{py}" r="3" fill="{c}"/>"#);
            }
        }
    }
}

/// The plot as an SVG document.
pub fn svg(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    text(
        &mut out,
        WIDTH / 2.0,
        28.0,
        "middle",
        18,
        "shmsg compare: shared memory vs message passing",
    );
    let s = &report.settings;
    let pinning = match s.pinned {
        Some((a, b)) => format!("pinned to CPUs {a} and {b}"),
        None => "not pinned".into(),
    };
    text(
        &mut out,
        WIDTH / 2.0,
        50.0,
        "middle",
        12,
        &report.machine.line(),
    );
    text(
        &mut out,
        WIDTH / 2.0,
        68.0,
        "middle",
        12,
        &format!(
            "{pinning}; median of {} run(s) of {} ms; every byte written and checked",
            s.runs,
            s.duration.as_millis()
        ),
    );
    let series = |value: &dyn Fn(&super::types::Cell) -> Option<f64>| -> Vec<Series> {
        s.transports
            .iter()
            .chain([&Transport::RefRing])
            .map(|&t| Series {
                transport: t,
                points: report
                    .cells
                    .iter()
                    .chain(&report.ring_ref)
                    .filter(|c| c.transport == t)
                    .filter_map(|c| value(c).map(|v| (c.size as f64, v)))
                    .filter(|p| p.1 > 0.0 && p.1.is_finite())
                    .collect(),
            })
            .collect()
    };
    let rtt = series(&|c| c.ping.round_trip_ns.as_ref().ok().map(|r| r.median));
    let bytes = series(&|c| {
        c.stream
            .messages_per_s
            .as_ref()
            .ok()
            .map(|r| r.median * c.size as f64)
    });
    let cacheline: Vec<(f64, f64)> = report
        .cacheline_ns
        .as_ref()
        .ok()
        .map(|c| vec![(1.0, c.median)])
        .unwrap_or_default();
    let memcpy: Vec<(f64, f64)> = report
        .memcpy
        .iter()
        .filter_map(|(size, m)| m.as_ref().ok().map(|m| (*size as f64, m.median)))
        .collect();
    panel(
        &mut out,
        LEFTS[0],
        "Ping-pong round trip, median (lower is better)",
        &s.sizes,
        &rtt,
        &cacheline,
        "one cache line between two cores",
        time_name,
    );
    panel(
        &mut out,
        LEFTS[1],
        "Streaming throughput (higher is better)",
        &s.sizes,
        &bytes,
        &memcpy,
        "single-core memcpy",
        bytes_rate_name,
    );
    // The legend: transport names (the tables describe them), wrapped.
    let mut x = LEFTS[0];
    let mut y = HEIGHT - 52.0;
    let ring_ref = (!report.ring_ref.is_empty()).then_some(Transport::RefRing);
    for t in s.transports.iter().copied().chain(ring_ref) {
        let label = t.name();
        let width = 40.0 + 7.0 * label.len() as f64;
        if x + width > WIDTH - 20.0 {
            x = LEFTS[0];
            y += 20.0;
        }
        let dash = if t == Transport::RefRing {
            r#" stroke-dasharray="2,3""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<line x1="{x}" y1="{y}" x2="{:.1}" y2="{y}" stroke="{}" stroke-width="3"{dash}/>"#,
            x + 24.0,
            color(t)
        );
        text(&mut out, x + 30.0, y + 4.0, "start", 12, label);
        x += width;
    }
    let _ = writeln!(
        out,
        r##"<line x1="{x}" y1="{y}" x2="{:.1}" y2="{y}" stroke="#888" stroke-width="1.5" stroke-dasharray="6,4"/>"##,
        x + 24.0
    );
    text(&mut out, x + 30.0, y + 4.0, "start", 12, "reference");
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_has_a_line_per_transport_and_escapes_text() {
        let report = crate::report::tests::sample();
        let svg = svg(&report);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        // Two panels, one line per transport and the reference ring in
        // each, plus two references.
        assert_eq!(svg.matches("<polyline").count(), 2 * (3 + 1) + 2);
        assert!(svg.contains(">ref-ring</text>"));
        assert!(svg.contains("Test &quot;CPU&quot;, 2 CPUs"));
        assert!(!svg.contains("NaN"));
    }
}
