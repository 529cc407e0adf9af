//! A large local file checked in parts, on both cores at once.
//!
//! On two cores, handing work between threads costs: a reading thread's copy of the file lands
//! in its core's cache and a walk on the other core reads it from there, and the walk's captured
//! values travel back for the rules. Cut at line ends into parts of a few MB, the file is many
//! independent checks instead: each thread takes the next part, reads it, walks it and applies
//! the rules to it, all in its own cache. A thread that the host slows down simply takes fewer
//! parts. The parts are then joined in order to the first, as if one checker had read every byte
//! ([`FileChecker::absorb`]): rows renumbered, counts added, examples in file order, UPRN repeats
//! found across parts.
//!
//! A cut is a guess: a line end may lie inside a quoted value. The part before it tells: a part
//! is joined only when the walk up to it ends at its cut between two rows, nothing stopped, and
//! everything joins exactly. Otherwise the parts from there on are dropped and the first thread
//! reads on alone, so the report is always the one a single checker gives.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::engine::{Begin, CheckOptions, FileChecker, Fork, MAX_BYTES};
use crate::records::Flow;
use crate::report::FileReport;

/// Files smaller than this are read by one walk ([`FileChecker::check_reader`]): a second
/// thread would not earn its start.
pub const PARTS_FROM: u64 = 8 * 1024 * 1024;

/// A part's size, about (each ends at a line end): small enough that the two threads end
/// within a few milliseconds of each other, large enough that a part's fixed costs do not count.
const PART_BYTES: u64 = 4 * 1024 * 1024;

/// Each thread reads this much at a time: small enough that the bytes are still in the core's
/// cache when the walk reaches them.
const BUFFER_BYTES: usize = 128 * 1024;

/// How far past a part's nominal start a line end is looked for; none there, no cut there.
const FIND_LINE_END: usize = 64 * 1024;

/// How long the second thread spins while the first reads the header, before it dozes.
const SPIN: std::time::Duration = std::time::Duration::from_millis(5);

/// Checks a local file of `len` bytes, opened from `path`: in parts on two threads when the
/// options allow a second thread (`rules_thread`), the file is large enough and
/// `WDIV_ONE_WALK` is unset; otherwise as [`FileChecker::check_reader`] does. The report is the
/// same either way.
pub fn check_file<'p>(
    key: &str,
    path: &Path,
    file: &File,
    len: u64,
    options: CheckOptions<'p>,
    progress: impl FnMut(u64),
) -> io::Result<FileReport> {
    let one_walk =
        !options.rules_thread || len < PARTS_FROM || std::env::var_os("WDIV_ONE_WALK").is_some();
    let cuts = if one_walk {
        Vec::new()
    } else {
        cuts(file, len, PART_BYTES)?
    };
    if cuts.is_empty() {
        return FileChecker::check_reader(key, Some(len), from_start(file), options, progress);
    }
    let own = reopen(path, file);
    let second = own.as_ref().unwrap_or(file);
    Ok(in_parts(
        key,
        [file, second],
        len,
        &cuts,
        BUFFER_BYTES,
        options,
        progress,
    )?
    .0)
}

/// The file at `path` opened again, when it is still `file`: the second thread reads through
/// its own descriptor, so the kernel sees each thread's reads as one sequential stream and reads
/// ahead for each (parts of a file no longer cached are then read in large pieces).
fn reopen(path: &Path, file: &File) -> Option<File> {
    let again = File::open(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let (a, b) = (file.metadata().ok()?, again.metadata().ok()?);
        if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
            return None;
        }
    }
    Some(again)
}

/// Where to cut a file of `len` bytes into parts of about `every` bytes, and the last
/// [`TAPER`] parts' worth into parts a quarter that size: just after the first line feed at or
/// after each such offset, where one comes soon enough. The small parts at the end mean the
/// thread that runs out of parts first waits for the other at most a small part's time.
fn cuts(file: &File, len: u64, every: u64) -> io::Result<Vec<u64>> {
    cuts_after(file, offsets(len, every))
}

/// The last this many parts' worth of a file is cut into parts a quarter the size.
const TAPER: u64 = 3;

/// The nominal offsets of [`cuts`], ascending, each inside the file.
fn offsets(len: u64, every: u64) -> impl Iterator<Item = u64> {
    // The large parts end at the last multiple of `every` that leaves TAPER parts' worth.
    let start = len.saturating_sub(TAPER * every) / every * every;
    let large = (1..)
        .map(move |i| i * every)
        .take_while(move |&at| at <= start);
    let step = (every / 4).max(1);
    let small = (1..)
        .map(move |i| start + i * step)
        .take_while(move |&at| at < len);
    large.chain(small)
}

/// The cuts just after the first line feed at or after each of `offsets` (ascending), where
/// one comes soon enough; each further on than the last.
fn cuts_after(file: &File, offsets: impl IntoIterator<Item = u64>) -> io::Result<Vec<u64>> {
    let mut cuts: Vec<u64> = Vec::new();
    for offset in offsets {
        if let Some(cut) = line_end_after(file, offset)? {
            if cuts.last().is_none_or(|&last| cut > last) {
                cuts.push(cut);
            }
        }
    }
    Ok(cuts)
}

/// A part after the first: its bytes, from `from` to `to` (`None`: to the end of the file),
/// and the check that reads them.
struct Part<'p> {
    from: u64,
    to: Option<u64>,
    fork: Fork<'p>,
}

/// What the two threads share: the parts still to take, and each part's check once read
/// (`None` in a slot: not read, or not joinable).
struct Parts<'p> {
    waiting: Mutex<VecDeque<(usize, Part<'p>)>>,
    read: Mutex<Vec<Option<Fork<'p>>>>,
    /// The parts after the first are in `waiting`.
    ready: AtomicBool,
    /// A part cannot be joined, or the first part ended off a cut: take no more.
    stop: AtomicBool,
    /// Bytes read by the parts, for the progress bar.
    bytes: AtomicU64,
    /// The file's length when the check began.
    len: u64,
}

impl<'p> Parts<'p> {
    /// Waits for the parts to be handed out: spinning at first, then dozing. False when they
    /// never will be.
    fn wait_until_ready(&self) -> bool {
        let started = std::time::Instant::now();
        loop {
            if self.ready.load(Ordering::Acquire) {
                return true;
            }
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            if started.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::park_timeout(std::time::Duration::from_millis(1));
            }
        }
    }

    /// Takes the next part and reads it, until none is left or [`Parts::stop`] is set.
    fn work(&self, file: &File, buf: &mut [u8]) {
        while !self.stop.load(Ordering::Relaxed) {
            let Some((i, part)) = self.waiting.lock().expect("not poisoned").pop_front() else {
                return;
            };
            match self.read_part(file, buf, part) {
                Some(fork) => self.read.lock().expect("not poisoned")[i] = Some(fork),
                None => self.stop.store(true, Ordering::Relaxed),
            }
        }
    }

    /// Feeds a part's check its bytes. `None` when it cannot be joined (its check stopped, a
    /// read failed, the file outgrew the limit) or the parts were stopped meanwhile: the first
    /// thread then reads those bytes itself.
    fn read_part(&self, file: &File, buf: &mut [u8], part: Part<'p>) -> Option<Fork<'p>> {
        let Part { from, to, mut fork } = part;
        fork.expect_bytes(to.unwrap_or(self.len).saturating_sub(from));
        let mut at = from;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return None;
            }
            let want = to.map_or(buf.len(), |to| (to - at).min(buf.len() as u64) as usize);
            if want == 0 {
                fork.settle();
                return Some(fork);
            }
            let n = read_at_most(file, &mut buf[..want], at).ok()?;
            if n == 0 {
                // The end of the file (or of a part cut short by a shrinking file: the first
                // thread finds it so when it joins).
                fork.settle();
                return to.is_none().then_some(fork);
            }
            at += n as u64;
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
            if fork.feed(&buf[..n]) == Flow::Stop || at > MAX_BYTES {
                return None;
            }
        }
    }
}

/// Sets its flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Checks a file cut at `cuts` (increasing, each just after a line feed), reading `buffer`
/// bytes at a time: the first thread through `files[0]`, the second through `files[1]` (the
/// same file). Also says how many parts after the first were joined (rather than read again by
/// the first thread).
fn in_parts<'p>(
    key: &str,
    files: [&File; 2],
    len: u64,
    cuts: &[u64],
    buffer: usize,
    mut options: CheckOptions<'p>,
    mut progress: impl FnMut(u64),
) -> io::Result<(FileReport, usize)> {
    let [file, second] = files;
    // Each part applies its rules as it walks.
    options.rules_thread = false;
    let mut checker = match FileChecker::begin(key, Some(len), options) {
        Begin::Done(report) => return Ok((report, 0)),
        Begin::Checking(checker) => checker,
    };
    let first_end = cuts[0];
    let parts = Parts {
        waiting: Mutex::new(VecDeque::new()),
        read: Mutex::new((0..cuts.len()).map(|_| None).collect()),
        ready: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        bytes: AtomicU64::new(0),
        len,
    };
    let mut shown = 0u64;
    let mut show = |progress: &mut dyn FnMut(u64), upto: u64| {
        if upto > shown {
            progress(upto - shown);
            shown = upto;
        }
    };
    let mut buf = vec![0; buffer];
    let mut at = 0u64;
    let mut checking = true;
    let joinable = std::thread::scope(|scope| -> io::Result<bool> {
        // However this closure ends (a read error, a panic), the second thread stops waiting
        // and working, so the scope's join cannot hang.
        let _stop = StopOnDrop(&parts.stop);
        // Started first, so that its core is awake (an idle virtual CPU can take a millisecond or
        // two to be woken) by the time the parts are ready.
        let other = {
            let parts = &parts;
            std::thread::Builder::new()
                .name("parts".into())
                .spawn_scoped(scope, move || {
                    if parts.wait_until_ready() {
                        parts.work(second, &mut vec![0; buffer]);
                    }
                })
                .ok()
        };
        let mut forked = false;
        // The first part, with the others handed out as soon as the header is known.
        while at < first_end {
            let want = (first_end - at).min(buffer as u64) as usize;
            let n = read_at_most(file, &mut buf[..want], at)?;
            if n == 0 {
                break;
            }
            at += n as u64;
            show(&mut progress, at + parts.bytes.load(Ordering::Relaxed));
            checking = checker.feed(&buf[..n]) == Flow::Continue;
            if !checking {
                break;
            }
            if !forked {
                let Some(other) = &other else { break };
                let Some(forks) = (0..cuts.len())
                    .map(|_| checker.fork())
                    .collect::<Option<Vec<_>>>()
                else {
                    continue;
                };
                let mut waiting = parts.waiting.lock().expect("not poisoned");
                for (i, fork) in forks.into_iter().enumerate() {
                    let (from, to) = (cuts[i], cuts.get(i + 1).copied());
                    waiting.push_back((i, Part { from, to, fork }));
                }
                drop(waiting);
                checker.expect_bytes(first_end - at);
                forked = true;
                parts.ready.store(true, Ordering::Release);
                other.thread().unpark();
            }
        }
        // The parts can follow on only from the first part's cut, between two rows.
        let joinable = forked && checking && at == first_end && checker.at_record_start();
        if joinable {
            parts.work(file, &mut buf);
        } else {
            parts.stop.store(true, Ordering::Relaxed);
        }
        if let Some(other) = other {
            other.thread().unpark();
            if let Err(panic) = other.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Ok(joinable)
    })?;
    // Join the parts in order, while each follows on exactly.
    let mut joined = 0;
    if joinable {
        let read = parts.read.into_inner().expect("not poisoned");
        for (i, fork) in read.into_iter().enumerate() {
            let Some(fork) = fork else { break };
            let bytes = fork.bytes;
            if !checker.absorb(fork) {
                break;
            }
            joined += 1;
            at = cuts[i] + bytes;
            show(&mut progress, at);
        }
    }
    if joined < cuts.len() || !checking {
        // Not all joined: the first thread reads on alone, as one walk would.
        loop {
            let n = read_at_most(file, &mut buf, at)?;
            if n == 0 {
                break;
            }
            at += n as u64;
            show(&mut progress, at);
            if checker.take(&buf[..n], &mut checking) == Flow::Stop {
                break;
            }
        }
    }
    Ok((checker.finish(), joined))
}

/// Just after the first line feed at or after `offset`, if one comes within
/// [`FIND_LINE_END`] bytes and before the end of the file.
fn line_end_after(file: &File, offset: u64) -> io::Result<Option<u64>> {
    // A row is seldom longer than 4 KB: that much is read first.
    let mut buf = vec![0; 4096];
    loop {
        let n = read_at_most(file, &mut buf, offset)?;
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            // Not at the file's end (a full read may have more after it).
            let cut = offset + i as u64 + 1;
            return Ok((cut < offset + n as u64 || n == buf.len()).then_some(cut));
        }
        if n < buf.len() || buf.len() >= FIND_LINE_END {
            return Ok(None);
        }
        buf.resize(FIND_LINE_END, 0);
    }
}

/// The file from its first byte, wherever its cursor is, as the parts read it.
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

/// The reports of `bytes` checked in parts, for the tests that hold them to one walk's.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::io::Write;

    /// `bytes` (as a file named `key`) checked in parts, once for each list of `plans`: cut
    /// after the line end at or after each offset of the list, read `buffer` bytes at a time.
    /// Each report, and how many parts after the first were joined, of how many, in all.
    pub fn reports_in_parts(
        key: &str,
        bytes: &[u8],
        plans: &[Vec<u64>],
        buffer: usize,
        options: impl Fn() -> CheckOptions<'static>,
    ) -> (Vec<FileReport>, usize, usize) {
        let mut file = tempfile::tempfile().expect("a temporary file");
        file.write_all(bytes).expect("written");
        let len = bytes.len() as u64;
        let mut reports = Vec::new();
        let (mut joined, mut parts) = (0, 0);
        for offsets in plans {
            let cuts = cuts_after(&file, offsets.iter().copied()).expect("read");
            if cuts.is_empty() {
                continue;
            }
            let mut seen = 0;
            let (report, n) = in_parts(key, [&file, &file], len, &cuts, buffer, options(), |n| {
                seen += n
            })
            .expect("checked");
            assert_eq!(seen, len, "progress counts every byte once");
            joined += n;
            parts += cuts.len();
            reports.push(report);
        }
        (reports, joined, parts)
    }

    /// Offsets every `every` bytes of a file of `len` bytes.
    pub fn every(len: u64, every: u64) -> Vec<u64> {
        (1..)
            .map(|i| i * every.max(1))
            .take_while(|&o| o < len)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parts::testing::{every, reports_in_parts};

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

    /// One cut per plan at each of `middles`.
    fn single_cuts(middles: &[u64]) -> Vec<Vec<u64>> {
        middles.iter().map(|&m| vec![m]).collect()
    }

    /// Findings in every part come out as one walk gives them: counts added, later parts'
    /// rows numbered on from the earlier ones', examples in file order, repeats found across
    /// cuts; with two parts or many, and parts shorter than a read.
    #[test]
    fn the_parts_are_joined_as_if_one_walk_read_them() {
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
        let mut plans = single_cuts(&middles);
        plans.push(every(len, len / 10));
        // Past the first 8 KB, which the checker reads before it knows the header (and can
        // fork), a cut every 1,000 bytes: parts shorter than a read.
        plans.push((9..).map(|k| k * 1000).take_while(|&o| o < len).collect());
        let (reports, joined, parts) = reports_in_parts("x.csv", &bytes, &plans, 4096, options);
        assert_eq!(joined, parts, "every cut between rows is joined");
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
    /// thread reads on alone from there, and the report is still one walk's.
    #[test]
    fn a_cut_inside_quotes_is_read_again_by_the_first_thread() {
        let rows = 3000;
        let bytes = xpress(rows, |k, cells| {
            cells[2] = format!("\"{k} Buttercup Row\n\nMarlfield\n\"");
        });
        let len = bytes.len() as u64;
        let middles: Vec<u64> = (1..8).map(|i| len * i / 8).collect();
        let mut plans = single_cuts(&middles);
        plans.push(every(len, 5000));
        let (reports, joined, parts) = reports_in_parts("x.csv", &bytes, &plans, 4096, options);
        assert!(joined < parts, "some cut fell inside quotes");
        let one = whole(&bytes);
        assert_eq!(one.csv_rows, rows as u64 + 1);
        for report in &reports {
            assert_eq!(report, &one);
        }
    }

    /// A short row in a later part stops its walk: that verdict needs the rows before it to
    /// number it, so the first thread reads on from that part itself and gives it.
    #[test]
    fn a_failing_part_is_read_again_by_the_first_thread() {
        let bytes = xpress(4000, |k, cells| {
            if k == 3500 {
                cells.truncate(3);
            }
        });
        let len = bytes.len() as u64;
        let mut plans = single_cuts(&[len / 3, len / 2]);
        plans.push(every(len, 10_000));
        let (reports, joined, parts) = reports_in_parts("x.csv", &bytes, &plans, 4096, options);
        // Only the parts before the short row's are joined.
        assert!(joined > 0 && joined < parts, "{joined} of {parts}");
        let one = whole(&bytes);
        assert_eq!(codes(&one), vec![("incomplete-row", Some(3502))]);
        for report in &reports {
            assert_eq!(report, &one);
        }
    }

    /// Bytes that are not UTF-8 in the last part only: the file is windows-1252 whole and in
    /// parts.
    #[test]
    fn the_encoding_is_judged_across_the_cut() {
        let mut bytes = xpress(3000, |_, _| {});
        let at = bytes.len() - 100;
        bytes[at] = 0xe9;
        let one = whole(&bytes);
        assert_eq!(one.csv_encoding, "windows-1252");
        let len = bytes.len() as u64;
        let plans = vec![vec![len / 2], every(len, 20_000)];
        let (reports, joined, parts) = reports_in_parts("x.csv", &bytes, &plans, 4096, options);
        assert_eq!(joined, parts);
        assert_eq!(reports, vec![one.clone(), one]);
    }

    /// Parts of the nominal size, then quarter parts over the last three parts' worth: the
    /// offsets ascend, stay inside the file, and leave small parts at its end.
    #[test]
    fn the_last_parts_are_small() {
        const MB: u64 = 1024 * 1024;
        for len in [8 * MB, 9 * MB, 12 * MB, 16 * MB, 149_000_000, 150 * MB] {
            let at: Vec<u64> = offsets(len, 4 * MB).collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]), "{len}: {at:?}");
            assert!(at.iter().all(|&o| 0 < o && o < len), "{len}: {at:?}");
            assert!(len - at.last().unwrap() <= MB, "{len}: {at:?}");
            let small = at.windows(2).filter(|w| w[1] - w[0] == MB).count();
            assert!(small >= (len / MB).min(12) as usize - 2, "{len}: {at:?}");
            if len > 20 * MB {
                assert_eq!(at[..3], [4 * MB, 8 * MB, 12 * MB]);
            }
        }
        assert_eq!(
            offsets(100, 40).collect::<Vec<_>>(),
            vec![10, 20, 30, 40, 50, 60, 70, 80, 90]
        );
    }

    /// Where the cut goes: just after the first line feed from the offset on, however far
    /// into the 64 KB looked at; never at the file's end.
    #[test]
    fn cuts_go_just_after_a_line_feed() {
        use std::io::Write;
        let mut bytes = vec![b'a'; 200_000];
        for at in [4095, 20_000, 199_999] {
            bytes[at] = b'\n';
        }
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        assert_eq!(line_end_after(&file, 0).unwrap(), Some(4096));
        assert_eq!(line_end_after(&file, 4096).unwrap(), Some(20_001));
        // The next line feed is more than 64 KB on.
        assert_eq!(line_end_after(&file, 20_001).unwrap(), None);
        // The last byte: no part would follow.
        assert_eq!(line_end_after(&file, 150_000).unwrap(), None);
        assert_eq!(cuts(&file, 200_000, 4000).unwrap(), vec![4096, 20_001]);
    }

    /// A file large enough to be read in parts, through [`check_file`] with its path (so the
    /// second thread opens it again), gets the one-walk report.
    #[test]
    fn a_large_file_gets_the_one_walk_report() {
        use std::io::Write;
        let bytes = xpress(130_000, |k, cells| {
            if k % 40_000 == 39_999 {
                cells[4] = format!("X{k}");
            }
        });
        assert!(bytes.len() as u64 > PARTS_FROM);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&bytes).unwrap();
        let path = file.path().to_owned();
        let opened = File::open(&path).unwrap();
        let mut seen = 0;
        let report = check_file(
            "x.csv",
            &path,
            &opened,
            bytes.len() as u64,
            options(),
            |n| seen += n,
        )
        .unwrap();
        assert_eq!(seen, bytes.len() as u64);
        let one = whole(&bytes);
        assert_eq!(codes(&one), vec![("malformed-postcode", Some(40_001))]);
        assert_eq!(report, one);
    }

    /// A read that fails ends the check with the error, and the second thread (waiting for
    /// parts that will never come) with it: nothing hangs.
    #[test]
    fn a_read_error_ends_both_threads() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_file = File::open(dir.path()).unwrap();
        let files = [&not_a_file, &not_a_file];
        let failed = in_parts("x.csv", files, 20_000, &[10_000], 4096, options(), |_| {});
        assert!(failed.is_err());
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
        let report = check_file(
            "x.csv",
            Path::new("/nonexistent/x.csv"),
            &file,
            bytes.len() as u64,
            options(),
            |_| {},
        )
        .unwrap();
        assert_eq!(report, whole(&bytes));
    }
}
