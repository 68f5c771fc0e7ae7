//! Tests of `report.rs` (and, through its sample report, of `export.rs`
//! and `plot.rs`): kept apart so that `report.rs` stays readable.

use std::time::Duration;

use shmsg_bench_support::stats::Spread;

use super::*;
use crate::export::{CSV_COLUMNS, json, to_csv, to_json};
use crate::measure::Machine;
use crate::types::{Kernel, PingPong, RateReport, RateResult, Settings, Stream, Transport};

fn spread(v: f64) -> Spread {
    Spread {
        median: v,
        min: v * 0.9,
        max: v * 1.1,
    }
}

fn kernel(calls: f64) -> Kernel {
    Kernel {
        syscalls: Ok(calls),
        voluntary_switches: Ok(calls / 2.0),
        kernel_share: Ok(0.5),
    }
}

/// A made-up cell: round trip `200 * slow` ns, `1e7 / slow / size`
/// messages per second.
fn cell(t: Transport, size: usize, slow: f64) -> Cell {
    Cell {
        transport: t,
        size,
        ping: PingPong {
            round_trip_ns: Ok(spread(200.0 * slow)),
            p99_ns: Ok(300.0 * slow),
            p999_ns: Ok(900.0 * slow),
            batch: 1,
            samples: 1000,
            kernel: if t == Transport::Tcp {
                Kernel::missing("perf_event_open failed")
            } else {
                kernel(if t.shared_memory() { 0.0 } else { 4.0 })
            },
        },
        stream: Stream {
            messages_per_s: Ok(spread(1e7 / slow / size as f64)),
            messages: 1000,
            kernel: kernel(if t.shared_memory() { 0.0 } else { 2.0 }),
        },
    }
}

/// A report with made-up figures, for rendering tests: shm (copying),
/// unix and tcp, the reference ring at half shm's speed, no `--rate`.
pub(crate) fn sample() -> Report {
    let sizes = vec![8, 1 << 20];
    let transports = vec![Transport::Shm, Transport::Unix, Transport::Tcp];
    let mut cells = Vec::new();
    for &t in &transports {
        for &size in &sizes {
            let slow = if t.shared_memory() { 1.0 } else { 40.0 };
            cells.push(cell(t, size, slow));
        }
    }
    Report {
        settings: Settings {
            transports,
            sizes: sizes.clone(),
            runs: 3,
            duration: Duration::from_millis(100),
            warmup: Duration::from_millis(10),
            pinned: Some((0, 1)),
            count_syscalls: true,
            quick: true,
            rate: None,
        },
        machine: Machine {
            cpu: "Test \"CPU\"".into(),
            cores: 2,
            kernel: "Linux 6.1".into(),
        },
        timer_ns: 20.0,
        syscall_method: Ok("perf".into()),
        cacheline_ns: Ok(spread(100.0)),
        memcpy: sizes.iter().map(|&s| (s, Ok(spread(1e10)))).collect(),
        cells,
        ring_ref: sizes
            .iter()
            .map(|&size| cell(Transport::RefRing, size, 2.0))
            .collect(),
        rate: None,
        wall_s: 12.345,
    }
}

#[test]
fn names() {
    assert_eq!(size_name(8), "8 B");
    assert_eq!(size_name(4096), "4 KiB");
    assert_eq!(size_name(1 << 20), "1 MiB");
    assert_eq!(size_name(1536), "1536 B");
    assert_eq!(time_name(220.4), "220 ns");
    assert_eq!(time_name(9_800.0), "9.8 us");
    assert_eq!(rate_name(35e6), "35.0 M msg/s");
    assert_eq!(bytes_rate_name(2.21e9), "2.21 GB/s");
    assert_eq!(json::string("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\u0001\"");
    assert_eq!(json::number(f64::NAN), "null");
    assert_eq!(json::number(3.0), "3");
    assert_eq!(json::number(0.25), "0.25");
}

#[test]
fn classic_table_has_every_row_with_figures() {
    let report = sample();
    let rows = classic_rows(&report);
    let aspects: Vec<&str> = rows.iter().map(|r| r.aspect.as_str()).collect();
    assert_eq!(
        aspects,
        [
            "Communication speed",
            "Kernel intervention",
            "Small data (8 B)",
            "Large data (1 MiB)",
            "Synchronization cost"
        ]
    );
    for row in &rows {
        for cell in [&row.shm, &row.mp, &row.verdict] {
            assert!(cell.chars().any(|c| c.is_ascii_digit()), "{row:?}");
        }
    }
    assert_eq!(rows[0].verdict, "shared memory 40.0x faster");
    assert!(rows[0].mp.contains("(unix, "), "{}", rows[0].mp);
    let table = classic_table(&report);
    assert!(table.contains("textbook: faster"));
    assert_eq!(table.lines().count(), 1 + 2 * rows.len());
}

#[test]
fn missing_figures_say_not_measured() {
    let mut report = sample();
    for cell in &mut report.cells {
        cell.stream.kernel = Kernel::missing("perf_event_open failed");
    }
    let rows = classic_rows(&report);
    assert!(
        rows[1]
            .shm
            .starts_with("not measured: perf_event_open failed")
    );
    assert!(rows[1].verdict.starts_with("not measured"));
    // CSV: the cell is empty and the last column says why.
    let csv = to_csv(&report);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let column = header
        .iter()
        .position(|c| *c == "stream_syscalls_per_msg")
        .unwrap();
    assert_eq!(row[column], "");
    assert!(
        row.last()
            .unwrap()
            .contains("stream_syscalls_per_msg: perf_event_open failed"),
        "{row:?}"
    );
    let json = to_json(&report);
    assert!(json.contains("\"syscalls\": null"));
    assert!(json.contains("\"not_measured\": {\"syscalls\": \"perf_event_open failed\""));
}

#[test]
fn csv_rows_have_every_column() {
    let report = sample();
    let csv = to_csv(&report);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], CSV_COLUMNS.join(","));
    assert_eq!(lines.len(), 1 + report.cells.len() + report.ring_ref.len());
    for line in &lines[1..] {
        assert_eq!(line.split(',').count(), CSV_COLUMNS.len(), "{line}");
    }
}

#[test]
fn detail_tables_have_a_line_per_cell() {
    let report = sample();
    let text = detail_tables(&report);
    let rows = report.cells.len() + report.ring_ref.len();
    assert_eq!(text.lines().count(), 2 * (1 + rows) + 1);
    assert!(text.contains("2.0x"), "{text}");
    assert!(preamble(&report).contains("pinned to CPUs 0 and 1"));
}

#[test]
fn the_large_data_cell_names_its_api_and_the_reference_ring() {
    let mut report = sample();
    let rows = classic_rows(&report);
    // The reference ring streams at half shm's rate.
    assert!(rows[3].shm.contains("(shm copy)"), "{}", rows[3].shm);
    assert!(rows[3].shm.contains(", 2.00x ref ring"), "{}", rows[3].shm);
    assert!(!rows[3].mp.contains("ref ring"), "{}", rows[3].mp);
    assert!(rows[0].shm.contains("0.50x ref ring"), "{}", rows[0].shm);
    // An in-place row that streams faster wins the cell, and says so.
    report.settings.transports.insert(1, Transport::ShmInPlace);
    for size in report.settings.sizes.clone() {
        report.cells.push(cell(Transport::ShmInPlace, size, 0.5));
    }
    let rows = classic_rows(&report);
    assert!(rows[3].shm.contains("(shm in place)"), "{}", rows[3].shm);
    assert!(rows[3].shm.contains(", 4.00x ref ring"), "{}", rows[3].shm);
    // The detail tables: the reference ring's rows and each row's ratio.
    let text = detail_tables(&report);
    let ring_rows: Vec<&str> = text.lines().filter(|l| l.starts_with("ref-ring")).collect();
    assert_eq!(ring_rows.len(), 2 * report.ring_ref.len(), "{text}");
    assert!(ring_rows.iter().all(|l| l.contains("1.00x")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("shm-in-place") && l.contains("4.00x")),
        "{text}"
    );
    assert!(preamble(&report).contains("shm-in-place = shared-memory ring, used in place"));
}

#[test]
fn rate_results_in_the_table_json_and_csv() {
    let mut report = sample();
    assert_eq!(rate_table(&report), "");
    assert!(to_json(&report).contains("\"rate\": null"));
    let column = |csv: &str, name: &str, row: usize| -> (String, String) {
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let i = header.iter().position(|c| *c == name).unwrap();
        let line = csv.lines().nth(row).unwrap();
        let fields: Vec<&str> = line.split(',').collect();
        (fields[i].to_string(), line.to_string())
    };
    let csv = to_csv(&report);
    let (cell, line) = column(&csv, "rate_p50_ns", 1);
    assert_eq!(cell, "");
    assert!(line.contains("rate_p50_ns: not run (no --rate)"), "{line}");

    report.settings.rate = Some(1e5);
    let failed = "the client peer failed".to_string();
    report.rate = Some(RateReport {
        per_s: 1e5,
        size: 16,
        window: Duration::from_millis(150),
        results: vec![
            RateResult {
                transport: Transport::Shm,
                latency_ns: Ok([200.0, 900.0, 5000.0, 20000.0]),
                received_per_s: Ok(1e5),
            },
            RateResult {
                transport: Transport::Unix,
                latency_ns: Err(failed.clone()),
                received_per_s: Err(failed.clone()),
            },
        ],
    });
    let table = rate_table(&report);
    assert!(table.starts_with("at 100 k msg/s"), "{table}");
    let shm = table.lines().find(|l| l.starts_with("shm")).unwrap();
    for figure in [
        "16 B",
        "200 ns",
        "900 ns",
        "5.0 us",
        "20.0 us",
        "100 k msg/s",
    ] {
        assert!(shm.contains(figure), "{shm}");
    }
    let unix = table.lines().find(|l| l.starts_with("unix")).unwrap();
    assert!(unix.contains("not measured"), "{unix}");
    assert!(preamble(&report).contains("intended send time"));

    // CSV: numbers where measured, else empty with the reason.
    let csv = to_csv(&report);
    assert_eq!(column(&csv, "rate_p50_ns", 1).0, "200"); // shm 8 B
    assert_eq!(column(&csv, "rate_max_ns", 2).0, "20000"); // shm 1 MiB
    assert_eq!(column(&csv, "rate_offered_per_s", 3).0, "100000"); // unix
    let (cell, line) = column(&csv, "rate_p99_ns", 3);
    assert_eq!(cell, "");
    assert!(
        line.contains("rate_p99_ns: the client peer failed"),
        "{line}"
    );
    let (cell, line) = column(&csv, "rate_p999_ns", 5); // tcp
    assert_eq!(cell, "");
    assert!(line.contains("not run for this transport"), "{line}");
    let json = to_json(&report);
    assert!(json.contains("\"offered_per_s\": 100000"), "{json}");
    assert!(json.contains("\"p50_ns\": 200"), "{json}");
    assert!(json.contains("\"p99_ns\": null"), "{json}");
    assert!(json.contains("\"not_measured\": {\"p50_ns\": \"the client peer failed\""));
}

/// The batch row streams only: it may win the small-data cell (naming its
/// API), it has no ping-pong row, and the legend explains it; with
/// `--rate`, its CSV rate cells give the same reason.
#[test]
fn the_batch_row_streams_only_and_says_so() {
    let mut report = sample();
    assert!(!preamble(&report).contains("batch:"));
    let why = Transport::ShmBatch.streaming_only().unwrap();
    report.settings.transports.insert(1, Transport::ShmBatch);
    for size in report.settings.sizes.clone() {
        let mut batch = cell(Transport::ShmBatch, size, 0.25);
        batch.ping = PingPong {
            round_trip_ns: Err(why.into()),
            p99_ns: Err(why.into()),
            p999_ns: Err(why.into()),
            batch: 0,
            samples: 0,
            kernel: Kernel::missing(why),
        };
        report.cells.push(batch);
    }
    let rows = classic_rows(&report);
    // Streams fastest: small and large data; the round trip stays shm's.
    assert!(
        rows[2].shm.contains("(shm send_batch x32)"),
        "{}",
        rows[2].shm
    );
    // 1 MiB messages go one per call: a batch holds at most 1 MiB.
    assert!(
        rows[3].shm.contains("(shm send_batch x1)"),
        "{}",
        rows[3].shm
    );
    assert!(rows[0].shm.contains("(shm copy,"), "{}", rows[0].shm);
    let text = detail_tables(&report);
    let (ping, stream) = text.split_once("\n\n").unwrap();
    assert!(!ping.contains("shm-batch"), "{text}");
    assert_eq!(
        stream
            .lines()
            .filter(|l| l.starts_with("shm-batch"))
            .count(),
        2,
        "{text}"
    );
    assert!(
        stream
            .lines()
            .any(|l| l.starts_with("shm-batch") && l.contains("8.00x")),
        "{text}"
    );
    let legend = preamble(&report);
    assert!(legend.contains("shm-batch = shared-memory ring, streamed with send_batch"));
    assert!(
        legend.contains("batch: the shm-batch row streams"),
        "{legend}"
    );
    assert!(legend.contains("not in the ping-pong table"), "{legend}");
    let json = to_json(&report);
    assert!(json.contains("\"send_batch\": 32"), "{json}");
    assert!(json.contains("\"round_trip_ns\": null"), "{json}");

    report.settings.rate = Some(1e5);
    report.rate = Some(RateReport {
        per_s: 1e5,
        size: 16,
        window: Duration::from_millis(150),
        results: Vec::new(),
    });
    assert!(preamble(&report).contains("not in the ping-pong or fixed-rate tables"));
    let csv = to_csv(&report);
    let line = csv.lines().find(|l| l.starts_with("shm-batch,")).unwrap();
    assert!(line.contains(&format!("rate_p50_ns: {why}")), "{line}");
}

/// A batch of the `shm-batch` row holds at most 1 MiB: 32 messages up to
/// 32 KiB, fewer above, one per call from 1 MiB up (the sender fills a
/// whole batch in one buffer; 32 of 16 MiB would take 512 MiB). The other
/// rows send one message per call.
#[test]
fn a_batch_holds_at_most_a_mebibyte() {
    let batch = |size| Transport::ShmBatch.batch(size);
    assert_eq!(batch(8), 32);
    assert_eq!(batch(32 << 10), 32);
    assert_eq!(batch(64 << 10), 16);
    assert_eq!(batch((64 << 10) + 1), 15);
    assert_eq!(batch(1 << 20), 1);
    assert_eq!(batch(16 << 20), 1);
    assert_eq!(batch(0), 32);
    assert_eq!(Transport::Shm.batch(8), 1);
    assert_eq!(Transport::ShmBatch.label(64 << 10), "shm send_batch x16");
}
