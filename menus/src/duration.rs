//! Durations as operators write them: a number of seconds (`5`, `1.5`) or a number with
//! units, possibly several (`500ms`, `5s`, `2m`, `1m30s`, `1h`).

use std::time::Duration;

/// Parse a duration; a bare number is seconds.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("'{s}' is not a duration (e.g. 5, 5s, 500ms, 1m30s)");
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return seconds(secs).ok_or_else(bad);
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(|| format!("'{s}': a number needs a unit (ms, s, m or h)"))?;
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        let after = &rest[digits..];
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let factor = match &after[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("'{s}': use the units ms, s, m or h")),
        };
        total += value * factor;
        rest = &after[unit_len..];
    }
    seconds(total).ok_or_else(bad)
}

fn seconds(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_units() {
        let ok = |s: &str| parse(s).unwrap();
        assert_eq!(ok("5"), Duration::from_secs(5));
        assert_eq!(ok("1.5"), Duration::from_millis(1500));
        assert_eq!(ok("5s"), Duration::from_secs(5));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        for bad in ["", "soon", "5x", "-1", "s", "1m30"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
