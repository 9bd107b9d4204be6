//! Timestamps: epoch seconds or milliseconds, or ISO 8601.

use serde::Serialize;

/// How a time column was written, so that it can be written back the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeFormat {
    /// Integer or fractional seconds since the epoch.
    #[default]
    Seconds,
    /// Integer milliseconds since the epoch.
    Millis,
    /// ISO 8601 / RFC 3339 text.
    Iso,
}

/// How to read numeric times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeUnit {
    /// Seconds below 10^11 (before year 5138), milliseconds from there on.
    #[default]
    Auto,
    /// Always seconds.
    Seconds,
    /// Always milliseconds.
    Millis,
}

const AUTO_MS_THRESHOLD: f64 = 1e11;

/// Parses a timestamp into milliseconds since the Unix epoch (UTC).
pub fn parse_time(s: &str, unit: TimeUnit) -> Option<(i64, TimeFormat)> {
    let s = s.trim_ascii();
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    // Fast path: plain non-negative integers.
    if b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        let v = b.iter().fold(0i64, |v, &c| v * 10 + (c - b'0') as i64);
        let millis = match unit {
            TimeUnit::Seconds => false,
            TimeUnit::Millis => true,
            TimeUnit::Auto => v as f64 >= AUTO_MS_THRESHOLD,
        };
        return Some(if millis {
            (v, TimeFormat::Millis)
        } else {
            (v * 1000, TimeFormat::Seconds)
        });
    }
    let numeric = b
        .iter()
        .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
        && !(b.len() >= 10 && b[4] == b'-' && b[7] == b'-');
    if numeric {
        let v: f64 = if let Ok(i) = s.parse::<i64>() {
            i as f64
        } else {
            s.parse::<f64>().ok()?
        };
        if !v.is_finite() {
            return None;
        }
        let millis = match unit {
            TimeUnit::Seconds => false,
            TimeUnit::Millis => true,
            TimeUnit::Auto => v.abs() >= AUTO_MS_THRESHOLD,
        };
        let ms = if millis { v } else { v * 1000.0 };
        if ms.abs() > 8.0e15 {
            return None;
        }
        return Some((
            ms.round() as i64,
            if millis {
                TimeFormat::Millis
            } else {
                TimeFormat::Seconds
            },
        ));
    }
    parse_iso(s).map(|ms| (ms, TimeFormat::Iso))
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let part = b.get(at..at + n)?;
    let mut v = 0i64;
    for &c in part {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let y = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let mo = digits(b, 5, 2)?;
    let d = digits(b, 8, 2)?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let mut ms = days * 86_400_000;
    if b.len() == 10 {
        return Some(ms);
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let h = digits(b, 11, 2)?;
    if b.get(13) != Some(&b':') {
        return None;
    }
    let mi = digits(b, 14, 2)?;
    let mut pos = 16;
    let mut sec = 0;
    if b.get(pos) == Some(&b':') {
        sec = digits(b, pos + 1, 2)?;
        pos += 3;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    ms += (h * 3600 + mi * 60 + sec) * 1000;
    if matches!(b.get(pos), Some(b'.') | Some(b',')) {
        pos += 1;
        let start = pos;
        let mut frac = 0i64;
        let mut scale = 1000i64;
        while pos < b.len() && b[pos].is_ascii_digit() {
            if scale > 1 {
                scale /= 10;
                frac += (b[pos] - b'0') as i64 * scale;
            }
            pos += 1;
        }
        if pos == start {
            return None;
        }
        ms += frac;
    }
    match b.get(pos) {
        None => Some(ms),
        Some(b'Z') | Some(b'z') if pos + 1 == b.len() => Some(ms),
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, pos + 1, 2)?;
            let om = match b.len() - pos {
                3 => 0,
                5 => digits(b, pos + 3, 2)?,
                6 if b[pos + 3] == b':' => digits(b, pos + 4, 2)?,
                _ => return None,
            };
            let offset = (oh * 60 + om) * 60_000;
            Some(if sign == b'+' {
                ms - offset
            } else {
                ms + offset
            })
        }
        _ => None,
    }
}

/// The UTC date of `ms` as `YYYY-MM-DD`.
pub fn ymd(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Writes `ms` in `format` (ISO as RFC 3339 in UTC).
pub fn format_time(ms: i64, format: TimeFormat) -> String {
    match format {
        TimeFormat::Millis => ms.to_string(),
        TimeFormat::Seconds => {
            if ms % 1000 == 0 {
                (ms / 1000).to_string()
            } else {
                format!("{}", ms as f64 / 1000.0)
            }
        }
        TimeFormat::Iso => {
            let days = ms.div_euclid(86_400_000);
            let rem = ms.rem_euclid(86_400_000);
            let (y, m, d) = civil_from_days(days);
            let (h, mi, s, frac) = (
                rem / 3_600_000,
                rem / 60_000 % 60,
                rem / 1000 % 60,
                rem % 1000,
            );
            if frac == 0 {
                format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
            } else {
                format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_units() {
        assert_eq!(
            parse_time("881250949", TimeUnit::Auto),
            Some((881_250_949_000, TimeFormat::Seconds))
        );
        assert_eq!(
            parse_time("1433221332117", TimeUnit::Auto),
            Some((1_433_221_332_117, TimeFormat::Millis))
        );
        assert_eq!(
            parse_time("881250949.5", TimeUnit::Auto),
            Some((881_250_949_500, TimeFormat::Seconds))
        );
        assert_eq!(
            parse_time("100", TimeUnit::Millis),
            Some((100, TimeFormat::Millis))
        );
        assert_eq!(parse_time("nan", TimeUnit::Auto), None);
        assert_eq!(parse_time("1e300", TimeUnit::Auto), None);
        assert_eq!(parse_time("", TimeUnit::Auto), None);
        assert_eq!(parse_time("yesterday", TimeUnit::Auto), None);
    }

    #[test]
    fn iso_forms() {
        let base = 1_433_116_800_000; // 2015-06-01T00:00:00Z
        assert_eq!(
            parse_time("2015-06-01", TimeUnit::Auto),
            Some((base, TimeFormat::Iso))
        );
        let t = |s: &str| parse_time(s, TimeUnit::Auto).map(|x| x.0);
        assert_eq!(t("2015-06-01T12:30:15Z"), Some(base + 45_015_000));
        assert_eq!(t("2015-06-01 12:30:15"), Some(base + 45_015_000));
        assert_eq!(t("2015-06-01T12:30"), Some(base + 45_000_000));
        assert_eq!(t("2015-06-01T12:30:15.25Z"), Some(base + 45_015_250));
        assert_eq!(t("2015-06-01T14:30:15+02:00"), Some(base + 45_015_000));
        assert_eq!(t("2015-06-01T10:30:15-0200"), Some(base + 45_015_000));
        assert_eq!(t("2015-13-01"), None);
        assert_eq!(t("2015-06-01T25:00"), None);
        assert_eq!(t("2015-06-01Tjunk"), None);
    }

    #[test]
    fn iso_round_trips() {
        for ms in [0i64, 1_433_221_332_117, -86_400_000 * 365, 951_782_400_000] {
            let s = format_time(ms, TimeFormat::Iso);
            assert_eq!(parse_time(&s, TimeUnit::Auto).unwrap().0, ms, "{s}");
        }
        for days in -800_000..800_000i64 {
            if days % 997 == 0 {
                let (y, m, d) = civil_from_days(days);
                assert_eq!(days_from_civil(y, m, d), days);
            }
        }
    }
}
