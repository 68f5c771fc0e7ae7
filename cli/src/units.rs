//! Units: message sizes and durations as flags take them ("4K", "200ms"),
//! and sizes, times and rates as the tables and the plot write them.

use std::time::Duration;

/// The largest message size `compare` and `send`/`recv` accept.
pub const MAX_SIZE: usize = 16 << 20;

/// Parses "8", "4K", "4KiB", "1M", "1MiB" (binary units) into bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (write e.g. 64, 4K or 1M)"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        other => return Err(format!("{text:?}: unknown unit {other:?} (use K or M)")),
    };
    let size = number
        .checked_mul(scale)
        .filter(|s| (1..=MAX_SIZE).contains(s))
        .ok_or_else(|| format!("{text:?} is out of range: sizes go from 1 B to 16M"))?;
    Ok(size)
}

/// `text` split where its leading number (digits and points) ends.
fn number_and_unit(text: &str) -> (&str, &str) {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text.split_at(split)
}

/// Parses "200ms", "1s", "1.5s", "500us" into a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = number_and_unit(text.trim());
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (write e.g. 200ms or 1s)"))?;
    let seconds = match unit.trim() {
        "s" => number,
        "ms" => number / 1e3,
        "us" => number / 1e6,
        "" => return Err(format!("{text:?} needs a unit: s, ms or us")),
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use s, ms or us)"
            ));
        }
    };
    if !(0.0..=600.0).contains(&seconds) {
        return Err(format!("{text:?} is out of range (0 to 600 s)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The highest rate `compare --rate` accepts: one message every 10 ns.
pub const MAX_RATE: f64 = 1e8;

/// Parses an offered rate, "100000/s", "100k/s", "2.5M/s" (decimal: k is
/// 1000, M a million; the "/s" may be left out), into messages per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, unit) = number_and_unit(t.strip_suffix("/s").unwrap_or(t).trim_end());
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a rate (write e.g. 100000/s or 100k/s)"))?;
    let scale = match unit.trim() {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" => 1e6,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (write e.g. 100000/s, 100k/s or 1M/s)"
            ));
        }
    };
    let rate = number * scale;
    if !(1.0..=MAX_RATE).contains(&rate) {
        return Err(format!(
            "{text:?} is out of range: rates go from 1/s to 100M/s"
        ));
    }
    Ok(rate)
}

/// "8 B", "4 KiB", "1 MiB", "1536 B".
pub fn size_name(size: usize) -> String {
    if size >= 1 << 20 && size.is_multiple_of(1 << 20) {
        format!("{} MiB", size >> 20)
    } else if size >= 1 << 10 && size.is_multiple_of(1 << 10) {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

/// A duration in nanoseconds with a sensible unit: "220 ns", "9.8 us".
pub fn time_name(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} us", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A value scaled to an SI prefix: (number, prefix), e.g. ("35.0", "M").
fn si(value: f64) -> (String, &'static str) {
    if value >= 1e9 {
        (format!("{:.2}", value / 1e9), "G")
    } else if value >= 1e6 {
        (format!("{:.1}", value / 1e6), "M")
    } else if value >= 1e3 {
        (format!("{:.0}", value / 1e3), "k")
    } else {
        (format!("{value:.0}"), "")
    }
}

/// "35.0 M msg/s".
pub fn rate_name(per_s: f64) -> String {
    let (number, prefix) = si(per_s);
    if prefix.is_empty() {
        format!("{number} msg/s")
    } else {
        format!("{number} {prefix} msg/s")
    }
}

/// "2.21 GB/s" (decimal units).
pub fn bytes_rate_name(bytes_per_s: f64) -> String {
    let (number, prefix) = si(bytes_per_s);
    format!("{number} {prefix}B/s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("8"), Ok(8));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("17M").is_err());
        assert!(parse_size("4G").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("99999999999999999999999K").is_err());
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert!(parse_duration("200").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1h").is_err());
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("100000/s"), Ok(1e5));
        assert_eq!(parse_rate("100k/s"), Ok(1e5));
        assert_eq!(parse_rate("100K/s"), Ok(1e5));
        assert_eq!(parse_rate("2.5M/s"), Ok(2.5e6));
        assert_eq!(parse_rate("500"), Ok(500.0));
        assert_eq!(parse_rate(" 1k /s"), Ok(1e3));
        for bad in [
            "", "/s", "0/s", "0.5/s", "-5/s", "fast", "1G/s", "101M/s", "1e5/s", "1..2/s",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }
}
