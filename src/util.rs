//! Small helpers shared by several stages: clocks, time formatting, sizes
//! and times as users write them, back-off jitter and sets keyed by hashes.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// A hasher for keys that are hashes already (URL fingerprints, term
/// hashes): they are uniformly distributed, so they are used as they are.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A set of 64-bit hashes (URL fingerprints): 8 bytes an entry, no
/// rehashing.
pub type FpSet = HashSet<u64, BuildHasherDefault<IdentityHasher>>;
/// A map keyed by 64-bit hashes.
pub type FpMap<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;

/// A random number (from the standard library's per-process random
/// hash keys, the time and the pid): a lease token, unguessable enough to
/// tell two runs of the same process id apart.
pub fn random_i64() -> i64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish() as i64
}
/// Milliseconds since the Unix epoch (UTC), the unit of every stored time.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The time recrawl schedules read, in epoch milliseconds: the clock,
/// unless the hidden `TRAWL_NOW` environment variable (epoch
/// milliseconds) sets it. `TRAWL_NOW` is for tests, which must move time
/// forward between recrawls without waiting; nothing else reads it.
pub fn clock_ms() -> i64 {
    std::env::var("TRAWL_NOW")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(now_ms)
}

/// A byte count for people: `512 B`, `1.5 KiB`, `12.0 MiB`, `3.2 GiB`.
pub fn human_bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    let units = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024.0 {
        return format!("{n} B");
    }
    let mut v = n / 1024.0;
    let mut unit = units[0];
    for u in &units[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// Formats epoch milliseconds as RFC 3339 UTC (`2026-11-22T05:51:00.123Z`).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `a=1, b=2`: counts by name, sorted by name.
pub fn join_counts<'a>(counts: impl IntoIterator<Item = (&'a str, i64)>) -> String {
    let mut v: Vec<(&str, i64)> = counts.into_iter().collect();
    v.sort_unstable();
    v.iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A point in time as a user writes it, in epoch milliseconds (UTC):
/// `2026-11-22`, `2026-11-22T06:08:11Z` (fractions and a space for `T`
/// allowed), or an age: `90s`, `30m`, `12h`, `7d` before `now_ms`.
pub fn parse_time(s: &str, now_ms: i64) -> Option<i64> {
    let s = s.trim();
    if let Some(unit) = s.chars().last().filter(|c| c.is_ascii_alphabetic())
        && let Ok(n) = s[..s.len() - 1].parse::<u32>()
    {
        let secs = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        return Some(now_ms - i64::from(n) * secs * 1000);
    }
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').unwrap_or(t))),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // 2026-02-31 does not exist.
    if civil_from_days(days) != (y, m, d) {
        return None;
    }
    let mut ms = days * 86_400_000;
    if let Some(t) = time {
        let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
        let mut f = hms.split(':');
        let h: u32 = f.next()?.parse().ok()?;
        let mi: u32 = f.next()?.parse().ok()?;
        let sec: u32 = f.next().map_or(Some(0), |x| x.parse().ok())?;
        if f.next().is_some() || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        if !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let frac_ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
        ms += i64::from(h * 3600 + mi * 60 + sec) * 1000 + frac_ms;
    }
    Some(ms)
}

/// The units [`parse_byte_size`] reads, with their sizes in bytes: SI
/// prefixes are powers of 1000 and IEC ones of 1024, as in `ls --si`,
/// systemd and most package managers.
const BYTE_UNITS: [(&str, u64); 7] = [
    ("b", 1),
    ("kb", 1000),
    ("kib", 1 << 10),
    ("mb", 1_000_000),
    ("mib", 1 << 20),
    ("gb", 1_000_000_000),
    ("gib", 1 << 30),
];

/// A size in bytes as a user writes it: a plain number is bytes; a number
/// (a fraction allowed) followed by a unit, in any case and optionally
/// after a space: `B`, `KB`/`MB`/`GB` (1000, 1000², 1000³ bytes) or
/// `KiB`/`MiB`/`GiB` (1024, 1024², 1024³). A fraction of a byte is
/// dropped.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{s:?} is not a size: give a number of bytes, or a number with a unit: \
             B, KB, KiB, MB, MiB, GB or GiB (KB = 1000 bytes, KiB = 1024)"
        )
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim_start().to_ascii_lowercase();
    let factor = if unit.is_empty() {
        1
    } else {
        BYTE_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|&(_, f)| f)
            .ok_or_else(bad)?
    };
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(factor).ok_or_else(bad);
    }
    let x: f64 = number.parse().map_err(|_| bad())?;
    let bytes = (x * factor as f64).floor();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_byte_sizes() {
        for (given, bytes) in [
            ("0", 0),
            ("1500", 1500),
            ("10B", 10),
            ("10MB", 10_000_000),
            ("10mb", 10_000_000),
            ("10 MiB", 10 << 20),
            ("10mib", 10 << 20),
            ("1KB", 1000),
            ("1kib", 1024),
            ("2GB", 2_000_000_000),
            ("2GiB", 2 << 30),
            ("1.5KiB", 1536),
            ("0.5 kb", 500),
            (" 7 ", 7),
        ] {
            assert_eq!(parse_byte_size(given), Ok(bytes), "{given}");
        }
        for bad in [
            "",
            "MB",
            "10XB",
            "10 M",
            "10k",
            "-1",
            "1.2.3",
            "ten",
            "99999999999GB",
            "1e3",
        ] {
            assert!(parse_byte_size(bad).is_err(), "{bad}");
        }
        assert!(
            parse_byte_size("10XB")
                .unwrap_err()
                .contains("B, KB, KiB, MB, MiB, GB or GiB (KB = 1000 bytes, KiB = 1024)")
        );
    }

    #[test]
    fn parses_times() {
        for ms in [0, 951_782_400_123, 1_795_326_660_000] {
            assert_eq!(parse_time(&rfc3339(ms), 0), Some(ms));
        }
        assert_eq!(parse_time("2026-11-22", 0), Some(1_795_305_600_000));
        assert_eq!(parse_time("2026-11-22 05:51", 0), Some(1_795_326_660_000));
        assert_eq!(
            parse_time("2d", 1_000_000_000),
            Some(1_000_000_000 - 172_800_000)
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-22T25:00:00Z",
            "2026-02-31",
            "2026-11-22T-1:00",
            "2026-01-01T00:00:00.12é",
            "5y",
            "2026-11",
        ] {
            assert_eq!(parse_time(bad, 0), None, "{bad}");
        }
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_795_326_660_000), "2026-11-22T05:51:00.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }
}

/// Spreads back-off delays: `apply(d)` is `d` times a factor in
/// [0.75, 1.25), so hosts (or requests) that failed together do not come
/// back together. xorshift; not for anything that needs real randomness.
#[derive(Debug)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new() -> Self {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self((t ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn apply(&mut self, d: std::time::Duration) -> std::time::Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        d.mul_f64(0.75 + (self.0 % 1000) as f64 / 2000.0)
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks an `--out` path before anything is opened or written: not a
/// directory, in a directory that exists, and not the SQLite database
/// `db` nor its `-wal` or `-shm` file (through links too: the output is
/// renamed into place, and would replace it). The error names the path.
pub fn check_output_path(
    out: &std::path::Path,
    db: Option<&std::path::Path>,
) -> Result<(), String> {
    if out.is_dir() {
        return Err(format!(
            "--out {} is a directory; give the path of a file",
            out.display()
        ));
    }
    let dir = parent_dir(out);
    if !dir.is_dir() {
        return Err(format!(
            "--out {}: directory {} does not exist",
            out.display(),
            dir.display()
        ));
    }
    if let (Some(db), Ok(out_file)) = (db, out.canonicalize()) {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            if std::path::Path::new(&name).canonicalize().ok().as_ref() == Some(&out_file) {
                let what = if suffix.is_empty() {
                    "the database".to_string()
                } else {
                    format!("the database's {suffix} file")
                };
                return Err(format!(
                    "--out {} is {what}; give another file",
                    out.display()
                ));
            }
        }
    }
    Ok(())
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &std::path::Path) -> &std::path::Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    }
}

/// A temporary file beside `path` (`.NAME.tmp-PID` in its directory), to
/// write whole and rename onto `path`, so a failed write never leaves half
/// a file.
pub fn temp_beside(path: &std::path::Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    parent_dir(path).join(format!(".{name}.tmp-{}", std::process::id()))
}
