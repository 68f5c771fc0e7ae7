//! The files of `shmsg compare`: JSON and CSV. A figure that was not
//! measured is `null` in JSON, with its reason beside it, and "not measured"
//! in CSV.

use shmsg_bench_support::stats::Spread;

use super::report::classic_rows;
use super::types::{Cell, Figure, Kernel, Report, Settings};

/// A tiny JSON writer: values are built as text, escaped and validated here.
pub mod json {
    /// A JSON string literal.
    pub fn string(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    /// A JSON number, or `null` for NaN and infinities.
    pub fn number(v: f64) -> String {
        if v.is_finite() {
            if v == v.trunc() && v.abs() < 1e15 {
                format!("{}", v as i64)
            } else {
                format!("{v}")
            }
        } else {
            "null".into()
        }
    }

    /// An object from `(key, JSON text)` pairs.
    pub fn object(fields: &[(&str, String)]) -> String {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}: {v}", string(k)))
            .collect();
        format!("{{{}}}", body.join(", "))
    }

    /// An array of JSON texts, one per line.
    pub fn array(items: &[String]) -> String {
        if items.is_empty() {
            "[]".into()
        } else {
            format!("[\n  {}\n]", items.join(",\n  "))
        }
    }

    /// A top-level object from `(key, JSON text)` pairs, one key per line
    /// (nested arrays indented with it), ending in a newline.
    pub fn document(fields: &[(&str, String)]) -> String {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("  {}: {}", string(k), v.replace('\n', "\n  ")))
            .collect();
        format!("{{\n{}\n}}\n", body.join(",\n"))
    }
}

/// `--rate`'s results as JSON, `null` without `--rate`: `offered_per_s`,
/// `size`, `window_ms`, `method`, and `results`: per transport (the
/// reference ring last) `p50_ns`, `p99_ns`, `p999_ns`, `max_ns`,
/// `received_per_s`, `not_measured`.
fn rate_json(report: &Report) -> String {
    let Some(rate) = &report.rate else {
        return "null".into();
    };
    let results: Vec<String> = rate
        .results
        .iter()
        .map(|r| {
            let mut fields = vec![("transport", json::string(r.transport.name()))];
            let mut missing = Vec::new();
            for (i, key) in ["p50_ns", "p99_ns", "p999_ns", "max_ns"]
                .into_iter()
                .enumerate()
            {
                figure(&mut fields, &mut missing, key, &r.latency_ns, |l| {
                    json::number(l[i])
                });
            }
            figure(
                &mut fields,
                &mut missing,
                "received_per_s",
                &r.received_per_s,
                |v| json::number(*v),
            );
            fields.push(("not_measured", json::object(&missing)));
            json::object(&fields)
        })
        .collect();
    json::object(&[
        ("offered_per_s", json::number(rate.per_s)),
        ("size", rate.size.to_string()),
        ("window_ms", rate.window.as_millis().to_string()),
        ("method", json::string(RATE_METHOD)),
        ("results", format!("[{}]", results.join(", "))),
    ])
}

/// How `--rate` latencies are measured, as the JSON says it.
pub const RATE_METHOD: &str = "latency from each message's intended send time \
    (start + seq / rate), which corrects for coordinated omission; HdrHistogram, \
    3 significant digits";

/// The JSON schema identifier written into every file.
pub const JSON_SCHEMA: &str = "shmsg-compare/1";

fn spread_json(s: &Spread) -> String {
    json::object(&[
        ("median", json::number(s.median)),
        ("min", json::number(s.min)),
        ("max", json::number(s.max)),
    ])
}

/// Adds `key`'s value (or `null`) to `fields` and its reason to `missing`.
fn figure<T>(
    fields: &mut Vec<(&'static str, String)>,
    missing: &mut Vec<(&'static str, String)>,
    key: &'static str,
    figure: &Figure<T>,
    show: impl Fn(&T) -> String,
) {
    match figure {
        Ok(v) => fields.push((key, show(v))),
        Err(why) => {
            fields.push((key, "null".into()));
            missing.push((key, json::string(why)));
        }
    }
}

fn kernel_json(
    fields: &mut Vec<(&'static str, String)>,
    missing: &mut Vec<(&'static str, String)>,
    k: &Kernel,
) {
    figure(fields, missing, "syscalls", &k.syscalls, |v| {
        json::number(*v)
    });
    figure(
        fields,
        missing,
        "voluntary_switches",
        &k.voluntary_switches,
        |v| json::number(*v),
    );
    figure(fields, missing, "kernel_share", &k.kernel_share, |v| {
        json::number(*v)
    });
}

/// One transport at one size as JSON: `transport`, `model`, `size`,
/// `pingpong` and `stream`.
fn cell_json(cell: &Cell) -> String {
    let mut ping = Vec::new();
    let mut ping_missing = Vec::new();
    let p = &cell.ping;
    figure(
        &mut ping,
        &mut ping_missing,
        "round_trip_ns",
        &p.round_trip_ns,
        spread_json,
    );
    figure(&mut ping, &mut ping_missing, "p99_ns", &p.p99_ns, |v| {
        json::number(*v)
    });
    figure(&mut ping, &mut ping_missing, "p999_ns", &p.p999_ns, |v| {
        json::number(*v)
    });
    ping.push(("batch", p.batch.to_string()));
    ping.push(("samples", p.samples.to_string()));
    kernel_json(&mut ping, &mut ping_missing, &p.kernel);
    ping.push(("not_measured", json::object(&ping_missing)));
    let mut stream = Vec::new();
    let mut stream_missing = Vec::new();
    let st = &cell.stream;
    figure(
        &mut stream,
        &mut stream_missing,
        "messages_per_s",
        &st.messages_per_s,
        spread_json,
    );
    figure(
        &mut stream,
        &mut stream_missing,
        "bytes_per_s",
        &st.messages_per_s,
        |r| {
            spread_json(&Spread {
                median: r.median * cell.size as f64,
                min: r.min * cell.size as f64,
                max: r.max * cell.size as f64,
            })
        },
    );
    stream.push(("messages", st.messages.to_string()));
    stream.push(("send_batch", cell.transport.batch(cell.size).to_string()));
    kernel_json(&mut stream, &mut stream_missing, &st.kernel);
    stream.push(("not_measured", json::object(&stream_missing)));
    json::object(&[
        ("transport", json::string(cell.transport.name())),
        ("model", json::string(cell.transport.model())),
        ("size", cell.size.to_string()),
        ("pingpong", json::object(&ping)),
        ("stream", json::object(&stream)),
    ])
}

/// The settings as JSON: `settings` in the report, and what `compare
/// --plan` prints.
pub fn settings_json(s: &Settings) -> String {
    let names: Vec<String> = s
        .transports
        .iter()
        .map(|t| json::string(t.name()))
        .collect();
    let sizes: Vec<String> = s.sizes.iter().map(|v| v.to_string()).collect();
    let pinned = match s.pinned {
        Some((a, b)) => format!("[{a}, {b}]"),
        None => "null".into(),
    };
    json::object(&[
        ("transports", format!("[{}]", names.join(", "))),
        ("sizes", format!("[{}]", sizes.join(", "))),
        ("runs", s.runs.to_string()),
        ("duration_ms", s.duration.as_millis().to_string()),
        ("warmup_ms", s.warmup.as_millis().to_string()),
        ("pinned_cpus", pinned),
        ("count_syscalls", s.count_syscalls.to_string()),
        ("quick", s.quick.to_string()),
        ("rate_per_s", s.rate.map_or("null".into(), json::number)),
    ])
}

/// The report as JSON (schema [`JSON_SCHEMA`], described in the module
/// docs of `compare`). A figure that was not measured is `null`, and its
/// reason is under the object's `not_measured` key.
pub fn to_json(report: &Report) -> String {
    let machine = json::object(&[
        ("cpu", json::string(&report.machine.cpu)),
        ("cores", json::number(report.machine.cores as f64)),
        ("kernel", json::string(&report.machine.kernel)),
    ]);
    let settings = settings_json(&report.settings);
    let memcpy: Vec<String> = report
        .memcpy
        .iter()
        .map(|(size, m)| {
            json::object(&[
                ("size", size.to_string()),
                ("bytes_per_s", m.as_ref().map_or("null".into(), spread_json)),
            ])
        })
        .collect();
    let mut refs = Vec::new();
    let mut refs_missing = Vec::new();
    figure(
        &mut refs,
        &mut refs_missing,
        "cacheline_round_trip_ns",
        &report.cacheline_ns,
        spread_json,
    );
    refs.push(("memcpy", format!("[{}]", memcpy.join(", "))));
    let ring: Vec<String> = report.ring_ref.iter().map(cell_json).collect();
    refs.push(("ring", format!("[{}]", ring.join(", "))));
    if !refs_missing.is_empty() {
        refs.push(("not_measured", json::object(&refs_missing)));
    }
    let cells: Vec<String> = report.cells.iter().map(cell_json).collect();
    let classic: Vec<String> = classic_rows(report)
        .into_iter()
        .map(|r| {
            json::object(&[
                ("aspect", json::string(&r.aspect)),
                ("shared_memory_claim", json::string(r.shm_claim)),
                ("message_passing_claim", json::string(r.mp_claim)),
                ("shared_memory", json::string(&r.shm)),
                ("message_passing", json::string(&r.mp)),
                ("verdict", json::string(&r.verdict)),
            ])
        })
        .collect();
    let top = [
        ("schema", json::string(JSON_SCHEMA)),
        ("machine", machine),
        ("settings", settings),
        ("timer_ns", json::number(report.timer_ns)),
        (
            "syscall_method",
            match &report.syscall_method {
                Ok(how) => json::object(&[("measured", json::string(how))]),
                Err(why) => json::object(&[("not_measured", json::string(why))]),
            },
        ),
        ("references", json::object(&refs)),
        (
            "wall_s",
            json::number((report.wall_s * 10.0).round() / 10.0),
        ),
        ("classic", json::array(&classic)),
        ("rate", rate_json(report)),
        ("results", json::array(&cells)),
    ];
    json::document(&top)
}

/// The CSV header: one row per transport and size, then one per size for
/// the reference ring (`ref-ring`, model `reference`). The `rate_*`
/// columns are the transport's `--rate` figures (one message size, the
/// same on each of its rows).
pub const CSV_COLUMNS: [&str; 30] = [
    "transport",
    "model",
    "size_bytes",
    "rtt_median_ns",
    "rtt_p99_ns",
    "rtt_p999_ns",
    "rtt_min_ns",
    "rtt_max_ns",
    "rtt_vs_cacheline",
    "rtt_syscalls",
    "rtt_voluntary_switches",
    "rtt_kernel_share",
    "stream_msgs_per_s",
    "stream_bytes_per_s",
    "stream_bytes_per_s_min",
    "stream_bytes_per_s_max",
    "stream_vs_memcpy",
    "stream_syscalls_per_msg",
    "stream_voluntary_switches_per_msg",
    "stream_kernel_share",
    "cacheline_rtt_ns",
    "rtt_vs_ref_ring",
    "stream_vs_ref_ring",
    "rate_offered_per_s",
    "rate_size_bytes",
    "rate_p50_ns",
    "rate_p99_ns",
    "rate_p999_ns",
    "rate_max_ns",
    "not_measured",
];

/// The report as CSV: [`CSV_COLUMNS`], numbers in plain units (ns, 1/s,
/// bytes/s, shares 0..1). A figure that was not measured leaves its cell
/// empty, so every numeric column parses as numbers; the last column,
/// `not_measured`, names each empty cell with its reason (`column: reason`,
/// separated by `; `, quoted as CSV quotes a field).
pub fn to_csv(report: &Report) -> String {
    let num = |v: f64| json::number(v);
    let cacheline = report.cacheline_ns.as_ref().map(|c| c.median);
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    let no_rate = "not run (no --rate)".to_string();
    let no_ring = "the reference ring was not measured at this size".to_string();
    for cell in report.cells.iter().chain(&report.ring_ref) {
        let p = &cell.ping;
        let s = &cell.stream;
        let size = cell.size as f64;
        let rtt = p.round_trip_ns.as_ref();
        let rate = s.messages_per_s.as_ref();
        let memcpy = report.memcpy_at(cell.size).map(|m| m.median);
        let ratio = |a: Result<f64, &String>, b: Result<f64, &String>| match (a, b) {
            (Ok(a), Ok(b)) => Ok(a / b),
            (Err(why), _) | (_, Err(why)) => Err(why.clone()),
        };
        let reference = report.ring_ref_at(cell.size);
        let ref_rtt = reference.map_or(Err(&no_ring), |r| {
            r.ping.round_trip_ns.as_ref().map(|s| s.median)
        });
        let ref_rate = reference.map_or(Err(&no_ring), |r| {
            r.stream.messages_per_s.as_ref().map(|s| s.median)
        });
        let rate_result = report
            .rate
            .as_ref()
            .map(|r| (r, r.results.iter().find(|x| x.transport == cell.transport)));
        let (offered, rate_size, latency): (Figure, Figure, Figure<[f64; 4]>) = match rate_result {
            None => (
                Err(no_rate.clone()),
                Err(no_rate.clone()),
                Err(no_rate.clone()),
            ),
            Some((r, found)) => (
                Ok(r.per_s),
                Ok(r.size as f64),
                found.map_or_else(
                    || {
                        Err(cell
                            .transport
                            .streaming_only()
                            .unwrap_or("not run for this transport")
                            .into())
                    },
                    |x| x.latency_ns.clone(),
                ),
            ),
        };
        let figures: [Figure; 26] = [
            rtt.map(|r| r.median).map_err(Clone::clone),
            p.p99_ns.clone(),
            p.p999_ns.clone(),
            rtt.map(|r| r.min).map_err(Clone::clone),
            rtt.map(|r| r.max).map_err(Clone::clone),
            ratio(rtt.map(|r| r.median), cacheline),
            p.kernel.syscalls.clone(),
            p.kernel.voluntary_switches.clone(),
            p.kernel.kernel_share.clone(),
            rate.map(|r| r.median).map_err(Clone::clone),
            rate.map(|r| r.median * size).map_err(Clone::clone),
            rate.map(|r| r.min * size).map_err(Clone::clone),
            rate.map(|r| r.max * size).map_err(Clone::clone),
            ratio(rate.map(|r| r.median * size), memcpy.as_ref().copied()),
            s.kernel.syscalls.clone(),
            s.kernel.voluntary_switches.clone(),
            s.kernel.kernel_share.clone(),
            cacheline.map_err(Clone::clone),
            ratio(rtt.map(|r| r.median), ref_rtt),
            ratio(rate.map(|r| r.median), ref_rate),
            offered,
            rate_size,
            latency.clone().map(|l| l[0]),
            latency.clone().map(|l| l[1]),
            latency.clone().map(|l| l[2]),
            latency.map(|l| l[3]),
        ];
        let mut row = vec![
            cell.transport.name().to_string(),
            cell.transport.model().to_string(),
            cell.size.to_string(),
        ];
        let mut reasons = Vec::new();
        for (figure, column) in figures.iter().zip(&CSV_COLUMNS[3..]) {
            match figure {
                Ok(value) => row.push(num(*value)),
                Err(why) => {
                    row.push(String::new());
                    reasons.push(format!("{column}: {why}"));
                }
            }
        }
        row.push(csv_field(&reasons.join("; ")));
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// `text` as one CSV field: quoted (quotes doubled) when it holds a comma,
/// a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
