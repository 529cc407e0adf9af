//! The record walk alone, on one file: for counting its instructions with cachegrind, which
//! repeats to the instruction on a shared machine where seconds do not.
//!
//! ```text
//! walk FILE [COLUMN...]
//! ```
//!
//! Reads FILE (comma-separated) into memory, then walks its records in 512 KiB chunks as
//! `check` does, capturing the COLUMNs (0-based) of every record after the header: by default
//! 2, 9, 16 and 37, the columns the Xpress DC rules read. Prints the records walked and the
//! captured bytes, and the time the walk took. The figures in `docs/performance.md` come from:
//!
//! ```text
//! cargo build --release -p wdiv-checks --example walk
//! head -c 20000000 bench-data/xpress-dc-149MB.csv > /tmp/x20.csv
//! valgrind --tool=cachegrind --cache-sim=no --branch-sim=yes \
//!     target/release/examples/walk /tmp/x20.csv
//! ```

use std::time::Instant;
use wdiv_checks::{Capture, Flow, RecordEvent, RecordWalker};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: walk FILE [COLUMN...]")?;
    let mut columns: Vec<usize> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    if columns.is_empty() {
        columns = vec![2, 9, 16, 37];
    }
    let data = std::fs::read(&path)?;
    let started = Instant::now();
    let mut walker = RecordWalker::new(b',');
    let (mut records, mut captured_bytes) = (0u64, 0u64);
    let mut header_fields = None;
    let mut capturing = false;
    // The header alone first, as `check` reads it (4 KiB at a time), then 512 KiB chunks.
    let (head, body) = data.split_at(data.len().min(4096));
    for piece in std::iter::once(head).chain(body.chunks(512 * 1024)) {
        walker.feed(piece, &mut |event| {
            if let RecordEvent::Record {
                fields, captured, ..
            } = event
            {
                records += 1;
                captured_bytes += captured.raw().0.len() as u64;
                header_fields.get_or_insert(fields);
            }
            Flow::Continue
        });
        // Once the header is read, as `check` does: only the columns the rules read.
        if let (false, Some(fields)) = (capturing, header_fields) {
            let width = columns.iter().max().map_or(0, |m| m + 1).max(fields);
            let mut wanted = vec![false; width];
            for &c in &columns {
                wanted[c] = true;
            }
            walker.set_capture(Capture::Columns(wanted));
            capturing = true;
        }
    }
    walker.finish(&mut |event| {
        if let RecordEvent::Record { captured, .. } = event {
            records += 1;
            captured_bytes += captured.raw().0.len() as u64;
        }
        Flow::Continue
    });
    println!(
        "{records} records, {captured_bytes} captured bytes, walked in {:.4} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
