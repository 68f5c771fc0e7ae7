//! `shmsg compare` with the built binary: flag parsing (through the hidden
//! `--plan`, which prints the resolved settings), refused flags, and one
//! short end-to-end run whose output is checked for structure: the classic
//! table, the detailed tables, and the JSON, CSV and SVG files, where every
//! figure is a measured number or an explicit "not measured" with a reason.
//! No figure is checked against a speed: this machine is shared and noisy.

use std::collections::BTreeMap;
use std::process::{Command, Output};

fn shmsg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shmsg"))
        .args(args)
        .output()
        .expect("run shmsg")
}

/// A parsed JSON value (a minimal parser: the crate has no JSON dependency).
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    fn parse(text: &str) -> Json {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let value = p.value();
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing text after the JSON value");
        value
    }

    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Object(map) => map
                .get(key)
                .unwrap_or_else(|| panic!("missing key {key:?} in {self:?}")),
            _ => panic!("not an object: {self:?}"),
        }
    }

    fn keys(&self) -> Vec<&str> {
        match self {
            Json::Object(map) => map.keys().map(String::as_str).collect(),
            _ => panic!("not an object: {self:?}"),
        }
    }

    fn array(&self) -> &[Json] {
        match self {
            Json::Array(items) => items,
            _ => panic!("not an array: {self:?}"),
        }
    }

    fn str(&self) -> &str {
        match self {
            Json::String(s) => s,
            _ => panic!("not a string: {self:?}"),
        }
    }

    fn number(&self) -> f64 {
        match self {
            Json::Number(n) => *n,
            _ => panic!("not a number: {self:?}"),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(
            self.s.get(self.i),
            Some(&c),
            "expected {:?} at {}",
            c as char,
            self.i
        );
        self.i += 1;
    }

    fn value(&mut self) -> Json {
        self.ws();
        match self.s[self.i] {
            b'{' => {
                self.i += 1;
                let mut map = BTreeMap::new();
                self.ws();
                if self.s[self.i] == b'}' {
                    self.i += 1;
                    return Json::Object(map);
                }
                loop {
                    self.ws();
                    let Json::String(key) = self.value() else {
                        panic!("object key is not a string at {}", self.i)
                    };
                    self.eat(b':');
                    let value = self.value();
                    assert!(
                        map.insert(key.clone(), value).is_none(),
                        "duplicate key {key}"
                    );
                    self.ws();
                    match self.s[self.i] {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Json::Object(map);
                        }
                        c => panic!("unexpected {:?} at {}", c as char, self.i),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s[self.i] == b']' {
                    self.i += 1;
                    return Json::Array(items);
                }
                loop {
                    items.push(self.value());
                    self.ws();
                    match self.s[self.i] {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Json::Array(items);
                        }
                        c => panic!("unexpected {:?} at {}", c as char, self.i),
                    }
                }
            }
            b'"' => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    let c = self.s[self.i];
                    self.i += 1;
                    match c {
                        b'"' => return Json::String(out),
                        b'\\' => {
                            let e = self.s[self.i];
                            self.i += 1;
                            match e {
                                b'"' => out.push('"'),
                                b'\\' => out.push('\\'),
                                b'/' => out.push('/'),
                                b'n' => out.push('\n'),
                                b'r' => out.push('\r'),
                                b't' => out.push('\t'),
                                b'u' => {
                                    let hex =
                                        std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
                                    out.push(
                                        char::from_u32(u32::from_str_radix(hex, 16).unwrap())
                                            .unwrap(),
                                    );
                                    self.i += 4;
                                }
                                _ => panic!("bad escape at {}", self.i),
                            }
                        }
                        c if c < 0x20 => panic!("control character in a string at {}", self.i),
                        _ => {
                            // Copy one UTF-8 sequence.
                            let start = self.i - 1;
                            let mut end = self.i;
                            while end < self.s.len() && (self.s[end] & 0xC0) == 0x80 {
                                end += 1;
                            }
                            out.push_str(std::str::from_utf8(&self.s[start..end]).unwrap());
                            self.i = end;
                        }
                    }
                }
            }
            b't' | b'f' | b'n' => {
                for (word, value) in [
                    ("true", Json::Bool(true)),
                    ("false", Json::Bool(false)),
                    ("null", Json::Null),
                ] {
                    if self.s[self.i..].starts_with(word.as_bytes()) {
                        self.i += word.len();
                        return value;
                    }
                }
                panic!("bad literal at {}", self.i)
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len() && b"+-0123456789.eE".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                Json::Number(
                    text.parse()
                        .unwrap_or_else(|_| panic!("bad number {text:?}")),
                )
            }
        }
    }
}

#[test]
fn json_parser_reads_what_it_should() {
    let v = Json::parse(r#" {"a": [1, -2.5e3, null, true], "b": {"c": "x\"\n\u00e9"}} "#);
    assert_eq!(v.get("a").array().len(), 4);
    assert_eq!(v.get("a").array()[1].number(), -2500.0);
    assert_eq!(v.get("b").get("c").str(), "x\"\né");
}

fn plan(args: &[&str]) -> Json {
    let mut all = vec!["compare", "--plan"];
    all.extend_from_slice(args);
    let output = shmsg(&all);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Json::parse(&String::from_utf8(output.stdout).unwrap())
}

fn numbers(v: &Json) -> Vec<f64> {
    v.array().iter().map(Json::number).collect()
}

#[test]
fn flags_resolve_to_settings() {
    let quick = plan(&["--quick"]);
    assert_eq!(
        numbers(quick.get("sizes")),
        [8.0, 1024.0, 65536.0, 1048576.0]
    );
    assert_eq!(quick.get("runs").number(), 3.0);
    assert_eq!(quick.get("duration_ms").number(), 50.0);
    assert_eq!(quick.get("quick"), &Json::Bool(true));
    let names: Vec<&str> = quick
        .get("transports")
        .array()
        .iter()
        .map(Json::str)
        .collect();
    assert_eq!(
        names,
        [
            "shm",
            "shm-in-place",
            "shm-batch",
            "mpsc",
            "mpsc-in-place",
            "unix",
            "seqpacket",
            "pipe",
            "tcp"
        ]
    );
    assert_eq!(quick.get("rate_per_s"), &Json::Null);

    let full = plan(&[]);
    assert_eq!(full.get("sizes").array().len(), 7);
    assert_eq!(full.get("runs").number(), 5.0);
    for (rate, per_s) in [
        ("100000/s", 1e5),
        ("100k/s", 1e5),
        ("2.5M/s", 2.5e6),
        ("500", 500.0),
    ] {
        let with_rate = plan(&["--rate", rate]);
        assert_eq!(with_rate.get("rate_per_s").number(), per_s, "{rate}");
    }

    let custom = plan(&[
        "--quick",
        "--sizes",
        "4K,8,1M,8",
        "--transports",
        "tcp,shm",
        "--runs",
        "2",
        "--duration",
        "1.5s",
        "--warmup",
        "0ms",
        "--no-pin",
        "--no-syscalls",
    ]);
    assert_eq!(numbers(custom.get("sizes")), [8.0, 4096.0, 1048576.0]);
    let names: Vec<&str> = custom
        .get("transports")
        .array()
        .iter()
        .map(Json::str)
        .collect();
    assert_eq!(names, ["shm", "tcp"]);
    assert_eq!(custom.get("runs").number(), 2.0);
    assert_eq!(custom.get("duration_ms").number(), 1500.0);
    assert_eq!(custom.get("warmup_ms").number(), 0.0);
    assert_eq!(custom.get("pinned_cpus"), &Json::Null);
    assert_eq!(custom.get("count_syscalls"), &Json::Bool(false));
}

#[test]
fn bad_flags_are_refused_with_code_2() {
    for (args, says) in [
        (&["--sizes", "0"][..], "out of range"),
        (&["--sizes", "32M"][..], "out of range"),
        (&["--sizes", "4G"][..], "unknown unit"),
        (&["--runs", "0"][..], "--runs"),
        (&["--duration", "200"][..], "needs a unit"),
        (&["--transports", "carrier-pigeon"][..], "carrier-pigeon"),
        (&["--cpus", "0,0"][..], "two different CPUs"),
        (&["--cpus", "0,1", "--no-pin"][..], "cannot be used with"),
        (&["--rate", "0/s"][..], "out of range"),
        (&["--rate", "1G/s"][..], "unknown unit"),
        (&["--rate", "fast"][..], "not a rate"),
        (&["--rate=-5/s"][..], "not a rate"),
        (&["--rate", "200M/s"][..], "out of range"),
        (&["--rate"][..], "a value is required"),
        (&["--transports", "ref-ring"][..], "ref-ring"),
    ] {
        let mut all = vec!["compare", "--plan"];
        all.extend_from_slice(args);
        let output = shmsg(&all);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// A cell of a table or file: a number (with a unit) or "not measured".
fn measured_or_not(cell: &str) -> bool {
    cell.starts_with("not measured") || cell.chars().any(|c| c.is_ascii_digit())
}

const KERNEL_KEYS: [&str; 3] = ["syscalls", "voluntary_switches", "kernel_share"];

/// Every figure of `object` named in `keys` is a number (or a spread of
/// numbers), or `null` with its reason under `not_measured`.
fn check_figures(object: &Json, keys: &[&str]) {
    let missing = object.get("not_measured");
    for key in keys {
        match object.get(key) {
            Json::Null => assert!(
                !missing.get(key).str().is_empty(),
                "{key} is null without a reason"
            ),
            Json::Number(n) => assert!(n.is_finite() && *n >= 0.0, "{key} = {n}"),
            spread @ Json::Object(_) => {
                let (lo, mid, hi) = (
                    spread.get("min").number(),
                    spread.get("median").number(),
                    spread.get("max").number(),
                );
                assert!(0.0 < lo && lo <= mid && mid <= hi, "{key}: {spread:?}");
            }
            other => panic!("{key} = {other:?}"),
        }
    }
    for key in missing.keys() {
        assert_eq!(
            object.get(key),
            &Json::Null,
            "{key} has a value and a reason"
        );
    }
}

/// `--json` prints the report as one JSON document on stdout, the same as
/// compare.json, and nothing else there.
#[test]
fn json_on_stdout() {
    let out = std::env::temp_dir().join(format!("shmsg-compare-json-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = shmsg(&[
        "compare",
        "--json",
        "--transports",
        "unix",
        "--sizes",
        "8",
        "--runs",
        "1",
        "--duration",
        "10ms",
        "--warmup",
        "1ms",
        "--no-syscalls",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = Json::parse(&stdout);
    let written = Json::parse(&std::fs::read_to_string(out.join("compare.json")).unwrap());
    assert_eq!(printed, written);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn quick_comparison_end_to_end() {
    let out = std::env::temp_dir().join(format!("shmsg-compare-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = shmsg(&[
        "compare",
        "--quick",
        "--sizes",
        "8,64K",
        "--runs",
        "2",
        "--duration",
        "20ms",
        "--warmup",
        "5ms",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("[1/"), "no progress shown: {stderr}");

    // The classic table: five aspects, each with the textbook's claims on
    // one line and the measured figures on the next.
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("The classic comparison"))
        .expect("the classic table");
    let header = lines[start + 1];
    assert!(header.contains("Shared memory") && header.contains("Message passing"));
    let columns = [
        header.find("Shared memory").unwrap(),
        header.find("Message passing").unwrap(),
        header.find("Measured").unwrap(),
    ];
    for (row, aspect) in [
        "Communication speed",
        "Kernel intervention",
        "Small data (8 B)",
        "Large data (64 KiB)",
        "Synchronization cost",
    ]
    .iter()
    .enumerate()
    {
        let claims = lines[start + 2 + 2 * row];
        let figures = lines[start + 3 + 2 * row];
        assert!(claims.starts_with(aspect), "{claims}");
        assert!(claims.contains("textbook:"), "{claims}");
        let cells = [
            &figures[columns[0]..columns[1]],
            &figures[columns[1]..columns[2]],
            &figures[columns[2]..],
        ];
        for cell in cells {
            assert!(measured_or_not(cell.trim()), "{aspect}: {cell:?}");
        }
    }

    // The detailed tables: a line per transport and size, every cell filled.
    for table in ["ping-pong", "streaming"] {
        let head = lines
            .iter()
            .position(|l| l.starts_with(table) && l.contains("size"))
            .unwrap_or_else(|| panic!("no {table} table"));
        for transport in [
            "shm",
            "shm-in-place",
            "shm-batch",
            "mpsc",
            "mpsc-in-place",
            "unix",
            "seqpacket",
            "pipe",
            "tcp",
            "ref-ring",
        ] {
            for size in ["8 B", "64 KiB"] {
                // The batch row streams only: no ping-pong row.
                if table == "ping-pong" && transport == "shm-batch" {
                    assert!(
                        lines[head + 1..]
                            .iter()
                            .take_while(|l| !l.is_empty())
                            .all(|l| !l.starts_with(transport)),
                        "{stdout}"
                    );
                    continue;
                }
                let row = lines[head + 1..]
                    .iter()
                    .take_while(|l| !l.is_empty())
                    .find(|l| l.split("  ").next() == Some(transport) && l.contains(size))
                    .unwrap_or_else(|| panic!("{table}: no row for {transport} {size}"));
                assert!(!row.contains("NaN") && !row.contains("inf"), "{row}");
                assert!(
                    row.split("  ").filter(|c| !c.trim().is_empty()).all(|c| {
                        let c = c.trim();
                        c == transport || measured_or_not(c)
                    }),
                    "{row}"
                );
            }
        }
    }
    assert!(
        stdout.contains("timer: one clock reading costs"),
        "{stdout}"
    );
    assert!(stdout.contains("pinning: "), "{stdout}");

    // JSON.
    let json = Json::parse(&std::fs::read_to_string(out.join("compare.json")).unwrap());
    assert_eq!(json.get("schema").str(), "shmsg-compare/1");
    let machine = json.get("machine");
    assert!(!machine.get("cpu").str().is_empty());
    assert!(machine.get("cores").number() >= 1.0);
    assert!(machine.get("kernel").str().contains("Linux"));
    assert!(json.get("timer_ns").number() > 0.0);
    let method = json.get("syscall_method");
    assert_eq!(method.keys().len(), 1);
    assert!(["measured", "not_measured"].contains(&method.keys()[0]));
    let refs = json.get("references");
    assert!(refs.get("cacheline_round_trip_ns").get("median").number() > 0.0);
    for m in refs.get("memcpy").array() {
        assert!(m.get("bytes_per_s").get("median").number() > 0.0);
    }
    // The reference ring: measured between the two processes at each size.
    let ring = refs.get("ring").array();
    assert_eq!(ring.len(), 2);
    for cell in ring {
        assert_eq!(cell.get("transport").str(), "ref-ring");
        assert_eq!(cell.get("model").str(), "reference");
        let ping = cell.get("pingpong");
        assert!(ping.get("round_trip_ns").get("median").number() > 0.0);
        assert!(ping.get("p99_ns").number() > 0.0);
        let stream = cell.get("stream");
        assert!(stream.get("messages_per_s").get("median").number() > 0.0);
        assert!(
            stream
                .get("not_measured")
                .get("syscalls")
                .str()
                .contains("by construction")
        );
    }
    assert_eq!(json.get("rate"), &Json::Null);
    let classic = json.get("classic").array();
    assert_eq!(classic.len(), 5);
    // The large-data cell names the API its figure used, and its ratio to
    // the reference ring.
    let large = classic[3].get("shared_memory").str();
    assert!(
        [
            "(shm copy)",
            "(shm in place)",
            "(shm send_batch x16)",
            "(mpsc copy)",
            "(mpsc in place)"
        ]
        .iter()
        .any(|api| large.contains(api)),
        "{large}"
    );
    assert!(large.contains("x ref ring"), "{large}");
    for row in classic {
        for key in ["shared_memory", "message_passing", "verdict"] {
            assert!(measured_or_not(row.get(key).str()), "{row:?}");
        }
    }
    let results = json.get("results").array();
    assert_eq!(results.len(), 9 * 2);
    for cell in results {
        let model = cell.get("model").str();
        let transport = cell.get("transport").str();
        let shm =
            ["shm", "shm-in-place", "shm-batch", "mpsc", "mpsc-in-place"].contains(&transport);
        assert_eq!(
            model,
            if shm {
                "shared memory"
            } else {
                "message passing"
            }
        );
        let ping = cell.get("pingpong");
        let mut keys = vec!["round_trip_ns", "p99_ns", "p999_ns"];
        keys.extend(KERNEL_KEYS);
        check_figures(ping, &keys);
        let stream = cell.get("stream");
        let mut keys = vec!["messages_per_s", "bytes_per_s"];
        keys.extend(KERNEL_KEYS);
        check_figures(stream, &keys);
        // Throughput is measured on any machine; round trips too, but for
        // the batch row, which streams only.
        assert!(stream.get("messages_per_s").get("median").number() > 0.0);
        if transport == "shm-batch" {
            // At most 1 MiB per call: 32 of 8 B, 16 of 64 KiB.
            let batch = if cell.get("size").number() == 8.0 {
                32.0
            } else {
                16.0
            };
            assert_eq!(stream.get("send_batch").number(), batch);
            assert_eq!(ping.get("round_trip_ns"), &Json::Null);
            assert!(
                ping.get("not_measured")
                    .get("round_trip_ns")
                    .str()
                    .contains("streaming only")
            );
        } else {
            assert_eq!(stream.get("send_batch").number(), 1.0);
            assert!(ping.get("batch").number() >= 1.0);
            assert!(ping.get("round_trip_ns").get("median").number() > 0.0);
        }
    }

    // CSV: the header, then a row per transport and size, every cell filled.
    let csv = std::fs::read_to_string(out.join("compare.csv")).unwrap();
    let rows: Vec<Vec<String>> = csv.lines().map(csv_fields).collect();
    assert_eq!(rows[0][..3], ["transport", "model", "size_bytes"]);
    assert!(rows[0].iter().any(|c| c == "rtt_median_ns"));
    assert!(rows[0].iter().any(|c| c == "stream_bytes_per_s"));
    assert_eq!(rows[0].last().unwrap(), "not_measured");
    assert_eq!(rows.len(), 1 + 9 * 2 + 2);
    assert_eq!(
        rows.iter()
            .filter(|r| r[0] == "ref-ring" && r[1] == "reference")
            .count(),
        2
    );
    for row in &rows[1..] {
        assert_eq!(row.len(), rows[0].len(), "{row:?}");
        let (reasons, numbers) = row.split_last().unwrap();
        // Numeric columns hold numbers, or nothing with the reason in the
        // last column.
        for (i, cell) in numbers.iter().enumerate().skip(3) {
            let column = &rows[0][i];
            if cell.is_empty() {
                assert!(
                    reasons.contains(&format!("{column}: ")),
                    "{column}: {reasons}"
                );
            } else {
                assert!(
                    cell.parse::<f64>().is_ok_and(f64::is_finite),
                    "{column}: {cell:?}"
                );
            }
        }
    }

    // SVG: a plot with a line per transport in each panel and the machine.
    let svg = std::fs::read_to_string(out.join("compare.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.matches("<polyline").count() >= 2 * (8 + 1));
    assert!(svg.contains(machine.get("kernel").str()));
    std::fs::remove_dir_all(&out).unwrap();
}

/// `--rate`: each transport (and the reference ring) sent at the offered
/// rate, with p50 <= p99 <= p99.9 <= max latency from the intended send
/// times, in the table, the JSON and the CSV.
#[test]
fn a_fixed_rate_gives_latency_percentiles() {
    let out = std::env::temp_dir().join(format!("shmsg-compare-rate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = shmsg(&[
        "compare",
        "--transports",
        "shm-in-place,unix",
        "--sizes",
        "8",
        "--runs",
        "1",
        "--duration",
        "40ms",
        "--warmup",
        "5ms",
        "--no-syscalls",
        "--rate",
        "20k/s",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let head = lines
        .iter()
        .position(|l| l.starts_with("at 20 k msg/s"))
        .unwrap_or_else(|| panic!("no rate table: {stdout}"));
    for column in ["p50", "p99", "p99.9", "max", "received"] {
        assert!(lines[head].contains(column), "{}", lines[head]);
    }
    for transport in ["shm-in-place", "unix", "ref-ring"] {
        let row = lines[head + 1..]
            .iter()
            .take_while(|l| !l.is_empty())
            .find(|l| l.split("  ").next() == Some(transport))
            .unwrap_or_else(|| panic!("no rate row for {transport}: {stdout}"));
        // The messages hold a sequence number and a stamp: 16 B at least.
        assert!(row.contains("16 B"), "{row}");
    }
    assert!(stdout.contains("intended send time"), "{stdout}");

    let json = Json::parse(&std::fs::read_to_string(out.join("compare.json")).unwrap());
    let rate = json.get("rate");
    assert_eq!(rate.get("offered_per_s").number(), 20_000.0);
    assert_eq!(rate.get("size").number(), 16.0);
    assert!(rate.get("method").str().contains("coordinated omission"));
    let results = rate.get("results").array();
    let names: Vec<&str> = results.iter().map(|r| r.get("transport").str()).collect();
    assert_eq!(names, ["shm-in-place", "unix", "ref-ring"]);
    for r in results {
        // Measured on any machine, however loaded: the latencies are
        // ordered and positive; their size is not checked.
        let q: Vec<f64> = ["p50_ns", "p99_ns", "p999_ns", "max_ns"]
            .iter()
            .map(|k| r.get(k).number())
            .collect();
        assert!(q[0] > 0.0 && q.windows(2).all(|w| w[0] <= w[1]), "{r:?}");
        assert!(r.get("received_per_s").number() > 0.0, "{r:?}");
        assert!(r.get("not_measured").keys().is_empty(), "{r:?}");
    }

    let csv = std::fs::read_to_string(out.join("compare.csv")).unwrap();
    let rows: Vec<Vec<String>> = csv.lines().map(csv_fields).collect();
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    assert_eq!(rows.len(), 1 + 2 + 1);
    for row in &rows[1..] {
        assert_eq!(row[col("rate_offered_per_s")], "20000", "{row:?}");
        assert_eq!(row[col("rate_size_bytes")], "16", "{row:?}");
        for name in ["rate_p50_ns", "rate_p99_ns", "rate_p999_ns", "rate_max_ns"] {
            assert!(
                row[col(name)].parse::<f64>().is_ok_and(|v| v > 0.0),
                "{name}: {row:?}"
            );
        }
    }
    std::fs::remove_dir_all(&out).unwrap();
}

/// A comparison ended by a signal (Ctrl-C, SIGTERM, SIGHUP) leaves no
/// scratch directory behind and exits with 128 + the signal's number, as
/// shells expect.
#[test]
fn a_signal_ends_compare_cleanly() {
    for (signal, name, code) in [
        (libc::SIGINT, "INT", 130),
        (libc::SIGTERM, "TERM", 143),
        (libc::SIGHUP, "HUP", 129),
    ] {
        let tmp = std::env::temp_dir().join(format!(
            "shmsg-compare-signal-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_shmsg"))
            .args(["compare", "--quick", "--out"])
            .arg(tmp.join("out"))
            .env("TMPDIR", &tmp)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let scratch = tmp.join(format!("shmsg-compare-{}", child.id()));
        // Wait (up to 60 s: a start takes milliseconds) until the scratch
        // directory exists and holds a peer's files, i.e. mid-measurement.
        let started = std::time::Instant::now();
        while std::fs::read_dir(&scratch).map_or(true, |mut d| d.next().is_none()) {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "compare never started measuring"
            );
            assert!(child.try_wait().unwrap().is_none(), "compare exited early");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // SAFETY: `kill` with a child's pid and a valid signal number.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "SIG{name}: {status:?}");
        assert!(!scratch.exists(), "SIG{name} left {}", scratch.display());
        // Nor any peer: each one's command line names a report file in the
        // scratch directory. The kernel kills them as compare exits (give
        // it a few seconds on a loaded machine).
        let scratch_name = scratch.to_str().unwrap().to_string();
        let peers_left = || -> Vec<String> {
            std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .filter(|c| c.contains("peer bench") && c.contains(&scratch_name))
                .collect()
        };
        let since = std::time::Instant::now();
        while !peers_left().is_empty() && since.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(peers_left(), Vec::<String>::new(), "SIG{name} left peers");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}

/// A CSV line's fields: split at commas outside double quotes, a quoted
/// field unquoted (`""` is a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

/// The system-call figures need no manual step on a fresh machine: run as
/// root where tracefs is not mounted, compare finds the tracepoint by
/// mounting tracefs in a child's own mount namespace, and counts (nothing
/// stays mounted). As another user, or as a root that may not make a mount
/// namespace, it says why not and how to fix it.
#[test]
fn system_calls_are_counted_without_manual_steps() {
    let tracefs_mounts = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(" - tracefs "))
            .count()
    };
    let mounted_before = tracefs_mounts();
    // Its files go to a scratch directory, not into the source tree.
    let out = std::env::temp_dir().join(format!("shmsg-compare-calls-{}", std::process::id()));
    let output = shmsg(&[
        "compare",
        "--json",
        "--transports",
        "shm,unix",
        "--sizes",
        "64",
        "--runs",
        "1",
        "--duration",
        "10ms",
        "--warmup",
        "1ms",
        "--no-pin",
        "--out",
        out.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(tracefs_mounts(), mounted_before, "tracefs left mounted");
    let json = Json::parse(&String::from_utf8(output.stdout).unwrap());
    let method = json.get("syscall_method");
    let counted = method.keys() == ["measured"];
    if rustix::process::geteuid().is_root() && !private_mounts_refused() {
        assert!(counted, "not counted as root: {method:?}");
        for cell in json.get("results").array() {
            for kind in ["pingpong", "stream"] {
                let syscalls = cell.get(kind).get("syscalls");
                assert!(matches!(syscalls, Json::Number(n) if *n >= 0.0), "{cell:?}");
            }
        }
    } else if !counted {
        let why = method.get("not_measured").str();
        assert!(
            why.contains("mount -t tracefs")
                || why.contains("perf_event_paranoid")
                || why.contains("private mount namespace"),
            "{why}"
        );
    }
}

/// Whether this process may not make a mount namespace of its own: root in
/// a container without `CAP_SYS_ADMIN`, say, where compare can only report
/// why it did not count.
fn private_mounts_refused() -> bool {
    // SAFETY: a child made by `fork` that only calls `unshare` and `_exit`,
    // both async-signal-safe; the parent waits for it.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            libc::_exit(i32::from(libc::unshare(libc::CLONE_NEWNS) != 0));
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0)
    }
}

/// `--transports shm-batch`: a streaming row with a figure (the sender
/// streams with `send_batch`, 32 messages of 64 B per call), no ping-pong row (its
/// figures are null, with the reason), and the legend says so.
#[test]
fn a_batch_row_streams_with_send_batch() {
    let out = std::env::temp_dir().join(format!("shmsg-compare-batch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = shmsg(&[
        "compare",
        "--transports",
        "shm-batch",
        "--sizes",
        "64",
        "--runs",
        "1",
        "--duration",
        "20ms",
        "--warmup",
        "5ms",
        "--no-syscalls",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("batch: the shm-batch row"), "{stdout}");
    assert!(stdout.contains("shm-batch = "), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    let table = |name: &str| -> Vec<&str> {
        let head = lines
            .iter()
            .position(|l| l.starts_with(name) && l.contains("size"))
            .unwrap_or_else(|| panic!("no {name} table: {stdout}"));
        lines[head + 1..]
            .iter()
            .take_while(|l| !l.is_empty())
            .copied()
            .collect()
    };
    let row = table("streaming")
        .into_iter()
        .find(|l| l.split("  ").next() == Some("shm-batch"))
        .unwrap_or_else(|| panic!("no shm-batch streaming row: {stdout}"));
    assert!(row.contains("64 B") && row.contains("msg/s"), "{row}");
    assert!(!row.contains("NaN") && !row.contains("inf"), "{row}");
    assert!(
        table("ping-pong")
            .iter()
            .all(|l| !l.starts_with("shm-batch")),
        "{stdout}"
    );
    // The small-data cell may pick the batch row, and then names its API.
    let json = Json::parse(&std::fs::read_to_string(out.join("compare.json")).unwrap());
    let small = json.get("classic").array()[2].get("shared_memory").str();
    assert!(small.contains("(shm send_batch x32)"), "{small}");
    let results = json.get("results").array();
    assert_eq!(results.len(), 1);
    let cell = &results[0];
    assert_eq!(cell.get("transport").str(), "shm-batch");
    assert_eq!(cell.get("model").str(), "shared memory");
    let stream = cell.get("stream");
    assert!(stream.get("messages_per_s").get("median").number() > 0.0);
    assert!(stream.get("messages").number() > 0.0);
    assert_eq!(stream.get("send_batch").number(), 32.0);
    let ping = cell.get("pingpong");
    let mut keys = vec!["round_trip_ns", "p99_ns", "p999_ns"];
    keys.extend(KERNEL_KEYS);
    check_figures(ping, &keys);
    for key in keys {
        assert_eq!(ping.get(key), &Json::Null, "{key}");
        assert!(
            ping.get("not_measured")
                .get(key)
                .str()
                .contains("streaming only"),
            "{key}"
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}

/// The batch row's pair, run by hand: the sender sends with `send_batch`
/// over `shm:`, the receiver checks every message whole, in order, and
/// reports as many as were sent. `--batch` is refused where there is no
/// `send_batch` to use.
#[test]
fn the_batch_receiver_checks_every_message_sent() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir =
        std::env::temp_dir().join(format!("shmsg-compare-batch-peers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bench = |role: &str, endpoint: &str, report: &str, extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shmsg"));
        command
            .args(["peer", "bench", "--role", role, "--endpoint", endpoint])
            .args(["--size", "64", "--duration-ms", "20", "--warmup-ms", "5"])
            .arg("--report")
            .arg(dir.join(report))
            .args(extra)
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    let endpoint = format!("shm:compare-batch-test-{}", std::process::id());
    let mut server = bench("recv", &endpoint, "recv.report", &["--listen"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let actual = line.strip_prefix("ready ").expect("ready ENDPOINT").trim();
    let client = bench("send", actual, "send.report", &["--batch", "32"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(
        client.status.success(),
        "{}",
        String::from_utf8_lossy(&client.stderr)
    );
    let server = server.wait_with_output().unwrap();
    assert!(
        server.status.success(),
        "{}",
        String::from_utf8_lossy(&server.stderr)
    );
    let key = |report: &str, key: &str| -> u64 {
        let text = std::fs::read_to_string(dir.join(report)).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{report}: no {key}: {text}"))
            .parse()
            .unwrap()
    };
    let sent = key("send.report", "sent");
    assert!(sent > 0 && sent.is_multiple_of(32), "{sent}");
    assert_eq!(key("recv.report", "checked"), sent);
    assert!(key("recv.report", "messages") > 0);

    // Refused where there is no send_batch to use, out of range, or (a
    // batch is filled in one buffer) over 1 MiB per call.
    for (extra, says) in [
        (
            &[
                "--size", "64", "--role", "ping", "--link", "channel", "--batch", "32",
            ][..],
            "--batch",
        ),
        (
            &[
                "--size", "64", "--role", "send", "--link", "in-place", "--batch", "32",
            ][..],
            "--batch",
        ),
        (
            &[
                "--size", "64", "--role", "send", "--link", "channel", "--batch", "65",
            ][..],
            "--batch",
        ),
        (
            &[
                "--size", "64", "--role", "send", "--link", "channel", "--batch", "0",
            ][..],
            "--batch",
        ),
        (
            &["--size", "65536", "--role", "send", "--batch", "17"][..],
            "--batch 17 of --size 65536",
        ),
    ] {
        let mut all = vec![
            "peer",
            "bench",
            "--endpoint",
            "shm:never",
            "--duration-ms",
            "1",
            "--warmup-ms",
            "0",
            "--report",
            "/nonexistent/report",
        ];
        all.extend_from_slice(extra);
        let output = shmsg(&all);
        assert_eq!(output.status.code(), Some(2), "{extra:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{extra:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{extra:?}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
