//! The pages' formatting rules (`StrataApi.fmt` in `strata-net`'s `web/api.js`) in Rust: a
//! test computes what a page must show for a number of the API and compares it with the
//! rendered text. `strata-net`'s `web_assets` test checks these against the script itself in
//! the browser.

/// The units of `fmt.hashrate`.
const UNITS: [&str; 8] = [
    "H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s", "ZH/s",
];

/// JavaScript's `Number.prototype.toPrecision(p)` for a finite positive `x` (`p` from 1 to
/// 30): `p` significant digits, half rounded up (on the exact value of the double), in fixed
/// notation unless the exponent is below -6 or at least `p` (then `d.dde+N`).
pub fn to_precision(x: f64, p: usize) -> String {
    assert!(x.is_finite() && x > 0.0 && (1..=30).contains(&p), "{x} {p}");
    // 40 significant digits: a double is never that close to a tie without being one
    let exact = format!("{x:.39e}");
    let (mantissa, exp) = exact.split_once('e').expect("an exponent");
    let mut exp: i32 = exp.parse().expect("a number");
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let mut kept: Vec<u8> = digits[..p].iter().map(|d| d - b'0').collect();
    if digits[p] >= b'5' {
        let mut i = p;
        loop {
            if i == 0 {
                kept.insert(0, 1);
                kept.pop();
                exp += 1;
                break;
            }
            i -= 1;
            if kept[i] == 9 {
                kept[i] = 0;
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    let text: String = kept.iter().map(|d| char::from(b'0' + d)).collect();
    let p_i32 = i32::try_from(p).expect("small");
    if exp < -6 || exp >= p_i32 {
        let (first, rest) = text.split_at(1);
        let sign = if exp < 0 { '-' } else { '+' };
        let dot = if rest.is_empty() { "" } else { "." };
        format!("{first}{dot}{rest}e{sign}{}", exp.abs())
    } else if exp >= 0 {
        let (int, frac) = text.split_at(usize::try_from(exp).expect("not negative") + 1);
        if frac.is_empty() {
            int.to_owned()
        } else {
            format!("{int}.{frac}")
        }
    } else {
        let zeros = "0".repeat(usize::try_from(-exp - 1).expect("not negative"));
        format!("0.{zeros}{text}")
    }
}

/// `fmt.hashrate(h)`: three significant digits in the largest unit that keeps the value at
/// 1 or above (H/s below 1 H/s), "0 H/s" for 0 and what is not a positive number.
pub fn hashrate(h: f64) -> String {
    if !h.is_finite() || h <= 0.0 {
        return "0 H/s".to_owned();
    }
    let top = UNITS.len() - 1;
    // the script's Math.floor(Math.log10(h) / 3), clamped to the units
    let mut i = ((h.log10() / 3.0).floor().max(0.0) as usize).min(top);
    let scaled = |i: usize| h / 1000f64.powi(i32::try_from(i).expect("small"));
    let mut text = to_precision(scaled(i), 3);
    if text.parse::<f64>().is_ok_and(|v| v >= 1000.0) && i < top {
        i += 1;
        text = to_precision(scaled(i), 3);
    }
    format!("{text} {}", UNITS[i])
}

/// `fmt.number(n)` for an integer: `toLocaleString("en-US")`, thousands separated by commas.
pub fn number(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `fmt.time(ms)`: the UTC time of `ms` (milliseconds since the epoch) as
/// `YYYY-MM-DD HH:MM:SS UTC`; "–" for 0.
pub fn time(ms: u64) -> String {
    if ms == 0 {
        return "–".to_owned();
    }
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil, inverted)
    let z = i64::try_from(days).expect("a date") + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// `fmt.ago(ms)` rendered at `now_ms`: "never" for 0, else seconds (below 2 min), minutes
/// (below 2 h) or hours ago, rounded as `Math.round` does (half up).
pub fn ago(ms: u64, now_ms: u64) -> String {
    if ms == 0 {
        return "never".to_owned();
    }
    let round = |n: u64, d: u64| (2 * n + d) / (2 * d);
    let s = round(now_ms.saturating_sub(ms), 1000);
    if s < 120 {
        format!("{s} s ago")
    } else if s < 7200 {
        format!("{} min ago", round(s, 60))
    } else {
        format!("{} h ago", round(s, 3600))
    }
}

/// Every text `fmt.ago(ms)` can show when rendered at some instant from `from_ms` to
/// `to_ms` (the time a page was loading), oldest first.
pub fn ago_between(ms: u64, from_ms: u64, to_ms: u64) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // the text changes only at half seconds: stepping by 100 ms sees every one
    let mut now = from_ms;
    loop {
        let text = ago(ms, now.min(to_ms));
        if out.last() != Some(&text) {
            out.push(text);
        }
        if now >= to_ms {
            return out;
        }
        now += 100;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_the_script_writes_them() {
        // (12.25).toPrecision(3) is "12.3" in JavaScript (half up), 1234 "1.23e+3"
        for (x, p, text) in [
            (50.0, 3, "50.0"),
            (12.25, 3, "12.3"),
            (999.7, 3, "1.00e+3"),
            (1234.0, 3, "1.23e+3"),
            (0.5, 3, "0.500"),
            (0.000_123_4, 3, "0.000123"),
            (1.0e-7, 3, "1.00e-7"),
            (123.456, 3, "123"),
            // a little below 9.995 as a double
            (9.995, 3, "9.99"),
        ] {
            assert_eq!(to_precision(x, p), text, "{x}");
        }
        assert_eq!(hashrate(50_000.0), "50.0 kH/s");
        assert_eq!(hashrate(999_700.0), "1.00 MH/s");
        assert_eq!(hashrate(0.5), "0.500 H/s");
        assert_eq!(hashrate(0.0), "0 H/s");
        assert_eq!(hashrate(f64::NAN), "0 H/s");
        assert_eq!(hashrate(1e27), "1.00e+6 ZH/s");
        assert_eq!(number(1_234_567), "1,234,567");
        assert_eq!(number(12), "12");
        assert_eq!(time(0), "–");
        assert_eq!(time(1_700_000_000_123), "2023-11-14 22:13:20 UTC");
        assert_eq!(time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(ago(0, 5), "never");
        assert_eq!(ago(1_000, 3_499), "2 s ago");
        assert_eq!(ago(1_000, 3_500), "3 s ago");
        assert_eq!(ago(1, 150_000), "3 min ago");
        assert_eq!(ago(1, 8_000_000), "2 h ago");
        assert_eq!(
            ago_between(10_000, 12_000, 14_000),
            ["2 s ago", "3 s ago", "4 s ago"]
        );
    }
}
