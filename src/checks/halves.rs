//! A large local file checked in two halves at once, one per core.
//!
//! On two cores, handing work between threads costs: the reading thread's copy of the file
//! lands in its core's cache and the walk reads it from the other core's, and the walk's
//! captured values travel back for the rules. Cut in two at a line end, the file is two
//! independent checks instead: each thread reads its half, walks it and applies the rules to
//! it, all in its own cache. The second half is then joined to the first as if one checker had
//! read every byte ([`FileChecker::absorb`]): its rows renumbered, its counts added, its
//! examples after the first half's.
//!
//! The cut is a guess: a line end found after the middle may lie inside a quoted value. The
//! first half tells: only when its walk ends at that line end between two rows, with nothing
//! stopped and everything joinable, is the second half's work kept. Otherwise it is dropped and
//! the first thread reads on alone, so the report is always the one a single checker gives.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{Begin, CheckOptions, FileChecker, Flow, Fork, MAX_BYTES};
use crate::report::FileReport;

/// Files smaller than this are read by one walk ([`FileChecker::check_reader`]): the second
/// thread would not earn its start.
pub const HALVES_FROM: u64 = 8 * 1024 * 1024;

/// Each thread reads this much at a time: small enough that the bytes are still in the core's
/// cache when the walk reaches them.
const BUFFER_BYTES: usize = 256 * 1024;

/// How far past the middle a line end is looked for; a file with no line end there is read by
/// one walk.
const FIND_LINE_END: usize = 64 * 1024;

/// Checks a local file of `len` bytes: in two halves at once when the options allow a second
/// thread (`rules_thread`), the file is large enough and `WDIV_NO_HALVES` is unset; otherwise
/// as [`FileChecker::check_reader`] does. The report is the same either way.
pub fn check_file<'p>(
    key: &str,
    file: &File,
    len: u64,
    options: CheckOptions<'p>,
    progress: impl FnMut(u64),
) -> io::Result<FileReport> {
    if !options.rules_thread || len < HALVES_FROM || std::env::var_os("WDIV_NO_HALVES").is_some() {
        return FileChecker::check_reader(key, Some(len), from_start(file), options, progress);
    }
    check_in_halves(key, file, len, len / 2, options, progress)
}

/// Checks `file` cut at the first line end at or after byte `middle`, the second part on a
/// thread of its own. Falls back on [`FileChecker::check_reader`] when there is no line end
/// to cut at.
pub fn check_in_halves<'p>(
    key: &str,
    file: &File,
    len: u64,
    middle: u64,
    options: CheckOptions<'p>,
    progress: impl FnMut(u64),
) -> io::Result<FileReport> {
    let Some(cut) = line_end_after(file, middle)? else {
        return FileChecker::check_reader(key, Some(len), from_start(file), options, progress);
    };
    Ok(halves(key, file, len, cut, BUFFER_BYTES, options, progress)?.0)
}

/// [`check_in_halves`] cut at `cut`, reading `buffer` bytes at a time; also says whether the
/// second half was joined (rather than read again by the first thread).
fn halves<'p>(
    key: &str,
    file: &File,
    len: u64,
    cut: u64,
    buffer: usize,
    mut options: CheckOptions<'p>,
    mut progress: impl FnMut(u64),
) -> io::Result<(FileReport, bool)> {
    // Each half applies its rules as it walks.
    options.rules_thread = false;
    let mut checker = match FileChecker::begin(key, Some(len), options) {
        Begin::Done(report) => return Ok((report, false)),
        Begin::Checking(checker) => checker,
    };
    let cancel = AtomicBool::new(false);
    let later_read = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let mut buf = vec![0; buffer];
        let mut at = 0u64;
        let mut shown = 0u64;
        let mut show = |progress: &mut dyn FnMut(u64), upto: u64| {
            if upto > shown {
                progress(upto - shown);
                shown = upto;
            }
        };
        let mut later = None;
        let mut checking = true;
        // The first half, with the second started as soon as the header is known.
        while at < cut {
            let want = (cut - at).min(buffer as u64) as usize;
            let n = read_at_most(file, &mut buf[..want], at)?;
            if n == 0 {
                break;
            }
            at += n as u64;
            show(&mut progress, at + later_read.load(Ordering::Relaxed));
            checking = checker.feed(&buf[..n]) == Flow::Continue;
            if !checking {
                break;
            }
            if later.is_none() {
                if let Some(fork) = checker.fork() {
                    let (cancel, later_read) = (&cancel, &later_read);
                    later = Some(
                        std::thread::Builder::new()
                            .name("second half".into())
                            .spawn_scoped(scope, move || {
                                read_later(file, cut, buffer, fork, cancel, later_read)
                            })?,
                    );
                }
            }
        }
        let joinable = checking && at == cut && checker.at_record_start();
        if !joinable {
            cancel.store(true, Ordering::Relaxed);
        }
        let fork = later.and_then(|thread| match thread.join() {
            Ok(fork) => fork,
            Err(panic) => std::panic::resume_unwind(panic),
        });
        if joinable {
            if let Some(fork) = fork {
                let read = fork.bytes;
                if checker.absorb(fork).is_ok() {
                    show(&mut progress, cut + read);
                    return Ok((checker.finish(), true));
                }
            }
        }
        // Not joined: the first thread reads on alone, as one walk would.
        loop {
            let n = read_at_most(file, &mut buf, at)?;
            if n == 0 {
                break;
            }
            at += n as u64;
            show(&mut progress, at);
            if checking {
                checking = checker.feed(&buf[..n]) == Flow::Continue;
            } else {
                // The verdict is in; count the rest so the size rule sees the real size.
                checker.bytes += n as u64;
            }
            if checker.bytes > MAX_BYTES {
                break;
            }
        }
        Ok((checker.finish(), false))
    })
}

/// The second thread: feeds `fork` the file from `from` to its end. `None` when the fork
/// cannot be joined (its check stopped, a read failed, the file outgrew the limit) or the
/// first thread no longer wants it: the first thread then reads those bytes itself.
fn read_later<'p>(
    file: &File,
    from: u64,
    buffer: usize,
    mut fork: Fork<'p>,
    cancel: &AtomicBool,
    read: &AtomicU64,
) -> Option<Fork<'p>> {
    let mut buf = vec![0; buffer];
    let mut at = from;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        let n = read_at_most(file, &mut buf, at).ok()?;
        if n == 0 {
            return Some(fork);
        }
        at += n as u64;
        read.fetch_add(n as u64, Ordering::Relaxed);
        if fork.feed(&buf[..n]) == Flow::Stop || at > MAX_BYTES {
            return None;
        }
    }
}

/// Where to cut: just after the first line feed at or after `middle`, if one comes within
/// [`FIND_LINE_END`] bytes (and before the end of the file).
fn line_end_after(file: &File, middle: u64) -> io::Result<Option<u64>> {
    let mut buf = vec![0; FIND_LINE_END];
    let n = read_at_most(file, &mut buf, middle)?;
    Ok(memchr::memchr(b'\n', &buf[..n])
        .map(|i| middle + i as u64 + 1)
        .filter(|&cut| cut < middle + n as u64))
}

/// The file from its first byte, wherever its cursor is, as the halves read it.
fn from_start(file: &File) -> impl io::Read + Send + '_ {
    struct ReadAt<'f> {
        file: &'f File,
        at: u64,
    }
    impl io::Read for ReadAt<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = read_at(self.file, buf, self.at)?;
            self.at += n as u64;
            Ok(n)
        }
    }
    ReadAt { file, at: 0 }
}

/// Reads from `offset` until `buf` is full or the file ends; returns how many bytes were read.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match read_at(file, &mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// The reports of `bytes` checked in halves, for the tests that hold them to one walk's.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::io::Write;

    /// `bytes` (as a file named `key`) checked in halves, cut after the line end at or after
    /// each of `middles` and read `buffer` bytes at a time: each report, and how many of them
    /// joined the second half rather than reading it again.
    pub fn reports_in_halves(
        key: &str,
        bytes: &[u8],
        middles: &[u64],
        buffer: usize,
        options: impl Fn() -> CheckOptions<'static>,
    ) -> (Vec<FileReport>, usize) {
        let mut file = tempfile::tempfile().expect("a temporary file");
        file.write_all(bytes).expect("written");
        let len = bytes.len() as u64;
        let mut reports = Vec::new();
        let mut joined = 0;
        for &middle in middles {
            let Some(cut) = line_end_after(&file, middle).expect("read") else {
                continue;
            };
            let mut seen = 0;
            let (report, both) =
                halves(key, &file, len, cut, buffer, options(), |n| seen += n).expect("checked");
            assert_eq!(seen, len, "progress counts every byte once");
            joined += usize::from(both);
            reports.push(report);
        }
        (reports, joined)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::reports_in_halves;
    use super::*;

    fn options() -> CheckOptions<'static> {
        CheckOptions {
            election_date: "2024-05-02".parse().ok(),
            council: Some("IOS".to_owned()),
            rules_thread: true,
            ..CheckOptions::default()
        }
    }

    /// An Xpress DC file of `rows` rows; `damage` may change row `k`'s cells.
    fn xpress(rows: usize, damage: impl Fn(usize, &mut Vec<String>)) -> Vec<u8> {
        let mut text = String::from(
            "ElectionDate,Property_URN,AddressLine1,Post_Code,Polling_Place_Postcode,\
             Polling_Place_UPRN\r\n",
        );
        for k in 0..rows {
            let mut cells = vec![
                "02/05/2024".to_owned(),
                format!("{}", 200_001 + k),
                format!("\"{k} Buttercup Row, Marlfield\""),
                "HA8 6NB".to_owned(),
                "HA8 6EZ".to_owned(),
                "800200000101".to_owned(),
            ];
            damage(k, &mut cells);
            text.push_str(&cells.join(","));
            text.push_str("\r\n");
        }
        text.into_bytes()
    }

    /// The report of one walk, through the reading thread, as `check` gives it for a small file.
    fn whole(bytes: &[u8]) -> FileReport {
        FileChecker::check_reader("x.csv", None, bytes, options(), |_| {}).unwrap()
    }

    fn codes(report: &FileReport) -> Vec<(&str, Option<u64>)> {
        report
            .problems
            .iter()
            .map(|p| (p.code.as_str(), p.row))
            .collect()
    }

    /// Findings in both halves come out as one walk gives them: counts added, the second
    /// half's rows numbered on from the first's, its examples after the first's, repeats
    /// found across the cut.
    #[test]
    fn the_second_half_is_joined_as_if_one_walk_read_it() {
        let rows = 6000;
        let bytes = xpress(rows, |k, cells| {
            if k % 1500 == 7 {
                cells[3] = format!("BAD{k}");
            }
            if k == 5990 {
                // Repeats a UPRN of the first half.
                cells[1] = "200002".to_owned();
            }
            if k == 4000 || k == 10 {
                cells.push("extra".to_owned());
            }
            if k == 5000 {
                cells[0] = "03/05/2024".to_owned();
            }
        });
        let len = bytes.len() as u64;
        let middles: Vec<u64> = (1..16).map(|i| len * i / 16).collect();
        let (reports, joined) = reports_in_halves("x.csv", &bytes, &middles, 4096, options);
        assert_eq!(joined, middles.len(), "every cut between rows is joined");
        let one = whole(&bytes);
        assert_eq!(one.csv_rows, rows as u64 + 1);
        // Row k is on line k + 2.
        assert_eq!(
            codes(&one),
            vec![
                ("malformed-postcode", Some(9)),
                ("uprn-duplicate", None),
                ("election-date-mismatch", Some(5002)),
                ("long-rows", Some(12)),
            ]
        );
        assert!(
            one.problems[0].message.starts_with("4 rows have"),
            "{}",
            one.problems[0].message
        );
        for report in &reports {
            assert_eq!(report, &one);
        }
    }

    /// A cut inside a quoted value (a line break in an address) cannot be joined: the first
    /// thread reads on alone, and the report is still one walk's.
    #[test]
    fn a_cut_inside_quotes_is_read_again_by_the_first_thread() {
        let rows = 3000;
        let bytes = xpress(rows, |k, cells| {
            cells[2] = format!("\"{k} Buttercup Row\n\nMarlfield\n\"");
        });
        let len = bytes.len() as u64;
        let middles: Vec<u64> = (1..8).map(|i| len * i / 8).collect();
        let (reports, joined) = reports_in_halves("x.csv", &bytes, &middles, 4096, options);
        assert!(joined < middles.len(), "some cut fell inside quotes");
        let one = whole(&bytes);
        assert_eq!(one.csv_rows, rows as u64 + 1);
        for report in &reports {
            assert_eq!(report, &one);
        }
    }

    /// A short row in the second half stops its walk: that verdict needs the first half's rows
    /// to number it, so the first thread reads the second half again and gives it.
    #[test]
    fn a_failing_second_half_is_read_again_by_the_first_thread() {
        let bytes = xpress(4000, |k, cells| {
            if k == 3500 {
                cells.truncate(3);
            }
        });
        let len = bytes.len() as u64;
        let (reports, joined) =
            reports_in_halves("x.csv", &bytes, &[len / 3, len / 2], 4096, options);
        assert_eq!(joined, 0);
        let one = whole(&bytes);
        assert_eq!(codes(&one), vec![("incomplete-row", Some(3502))]);
        for report in &reports {
            assert_eq!(report, &one);
        }
    }

    /// Bytes that are not UTF-8 in the second half only: the file is windows-1252 whole and in
    /// halves.
    #[test]
    fn the_encoding_is_judged_across_the_cut() {
        let mut bytes = xpress(3000, |_, _| {});
        let at = bytes.len() - 100;
        bytes[at] = 0xe9;
        let one = whole(&bytes);
        assert_eq!(one.csv_encoding, "windows-1252");
        let len = bytes.len() as u64;
        let (reports, joined) = reports_in_halves("x.csv", &bytes, &[len / 2], 4096, options);
        assert_eq!(joined, 1);
        assert_eq!(reports, vec![one]);
    }

    /// A local file of any size gets the one-walk report through [`check_file`].
    #[test]
    fn check_file_gives_the_same_report() {
        use std::io::Write;
        let bytes = xpress(2000, |k, cells| {
            if k == 1999 {
                cells[3] = "nope".to_owned();
            }
        });
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let report = check_file("x.csv", &file, bytes.len() as u64, options(), |_| {}).unwrap();
        assert_eq!(report, whole(&bytes));
    }
}
