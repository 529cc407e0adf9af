//! The second core's time, for the row rules.
//!
//! On a machine with two cores, `check` keeps three kinds of work apart from the walk: reading
//! the file (the kernel's copy), and applying the row rules. Three threads on two cores take
//! turns, and the walk, the longest of them, waits whenever the other two both want its core.
//! So one thread does both: it reads ahead first, which the walk waits for, and applies the rules
//! to the rows walked so far in between. Where nothing is read on a thread of its own (a file
//! already in memory), the rules get a thread to themselves.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::mpsc::{Receiver, Sender, SyncSender};

/// A piece of work for the spare thread, run in the order given.
pub type Task = Box<dyn FnOnce() + Send>;

/// What the spare thread is sent.
pub enum Work {
    /// A buffer to fill with the next bytes of the file, and send back full.
    Fill(Vec<u8>),
    /// A task to run when no buffer is waiting to be filled.
    Run(Task),
}

/// A buffer of the file, and how much of it was filled (0: the input has ended).
pub type Filled = std::io::Result<(Vec<u8>, usize)>;

/// Where tasks can be sent to run on the other core.
#[derive(Debug, Clone)]
pub enum Spare {
    /// The thread reading the file ([`read_and_serve`]).
    Reader(Sender<Work>),
    /// A thread of the tasks' own, started when the first task needs it.
    Own,
}

impl Spare {
    /// The sender of tasks, starting the thread first if it is the tasks' own; `None` when it
    /// cannot be started.
    pub fn start(self) -> Option<Sender<Work>> {
        match self {
            Spare::Reader(tx) => Some(tx),
            Spare::Own => {
                let (tx, rx) = std::sync::mpsc::channel::<Work>();
                std::thread::Builder::new()
                    .name("rules".into())
                    .spawn(move || {
                        for work in rx {
                            if let Work::Run(task) = work {
                                task();
                            }
                        }
                    })
                    .ok()?;
                Some(tx)
            }
        }
    }
}

/// The reading thread: fills each buffer it is given from `reader` and sends it on `full`,
/// until the input ends (a last buffer of 0 bytes) or fails, or no one takes them any more;
/// runs the tasks it is given, in order, whenever no buffer is waiting. Returns once every
/// sender of work is gone.
pub fn read_and_serve(reader: &mut impl Read, work: Receiver<Work>, full: SyncSender<Filled>) {
    let mut free: Vec<Vec<u8>> = Vec::new();
    let mut tasks: VecDeque<Task> = VecDeque::new();
    let mut reading = true;
    loop {
        // Wait only when there is nothing to do; take whatever else has come meanwhile.
        let idle = (free.is_empty() || !reading) && tasks.is_empty();
        let first = if idle {
            match work.recv() {
                Ok(w) => Some(w),
                Err(_) => return,
            }
        } else {
            None
        };
        for w in first
            .into_iter()
            .chain(std::iter::from_fn(|| work.try_recv().ok()))
        {
            match w {
                Work::Fill(buf) if reading => free.push(buf),
                Work::Fill(_) => {}
                Work::Run(task) => tasks.push_back(task),
            }
        }
        // The walk waits for the next buffer; the rules can wait for the walk.
        if reading {
            if let Some(mut buf) = free.pop() {
                let filled = fill(reader, &mut buf);
                let ended = !matches!(filled, Ok(n) if n > 0);
                if full.send(filled.map(|n| (buf, n))).is_err() || ended {
                    reading = false;
                    free.clear();
                }
                continue;
            }
        }
        if let Some(task) = tasks.pop_front() {
            task();
        }
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{channel, sync_channel};

    /// Tasks run in the order sent, between and after the reads, and the thread ends once the
    /// senders are gone.
    #[test]
    fn reads_first_and_runs_tasks_in_order() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let (work_tx, work_rx) = channel::<Work>();
        let (full_tx, full_rx) = sync_channel::<Filled>(2);
        let (seen_tx, seen_rx) = channel::<usize>();
        for _ in 0..2 {
            work_tx.send(Work::Fill(vec![0; 3000])).unwrap();
        }
        let reader = std::thread::spawn({
            let data = data.clone();
            move || read_and_serve(&mut data.as_slice(), work_rx, full_tx)
        });
        let mut read = Vec::new();
        let mut task = 0;
        for filled in full_rx.iter() {
            let (buf, n) = filled.unwrap();
            if n == 0 {
                break;
            }
            read.extend_from_slice(&buf[..n]);
            for _ in 0..3 {
                let seen = seen_tx.clone();
                let i = task;
                task += 1;
                work_tx
                    .send(Work::Run(Box::new(move || seen.send(i).unwrap())))
                    .unwrap();
            }
            work_tx.send(Work::Fill(buf)).unwrap();
        }
        // Tasks sent after the input ended still run.
        let seen = seen_tx.clone();
        work_tx
            .send(Work::Run(Box::new(move || seen.send(usize::MAX).unwrap())))
            .unwrap();
        drop((work_tx, seen_tx));
        reader.join().unwrap();
        assert_eq!(read, data);
        let order: Vec<usize> = seen_rx.iter().collect();
        let mut want: Vec<usize> = (0..task).collect();
        want.push(usize::MAX);
        assert_eq!(order, want);
    }

    /// Once no one takes the buffers, the thread stops reading but still runs tasks.
    #[test]
    fn stops_reading_when_the_buffers_are_not_taken() {
        let (work_tx, work_rx) = channel::<Work>();
        let (full_tx, full_rx) = sync_channel::<Filled>(1);
        drop(full_rx);
        let (seen_tx, seen_rx) = channel::<u8>();
        work_tx.send(Work::Fill(vec![0; 10])).unwrap();
        work_tx
            .send(Work::Run(Box::new(move || seen_tx.send(7).unwrap())))
            .unwrap();
        drop(work_tx);
        read_and_serve(&mut std::io::repeat(1), work_rx, full_tx);
        assert_eq!(seen_rx.recv().unwrap(), 7);
    }

    #[test]
    fn a_thread_of_their_own_runs_the_tasks() {
        let tx = Spare::Own.start().expect("a thread");
        let (seen_tx, seen_rx) = channel::<u32>();
        for i in 0..5 {
            let seen = seen_tx.clone();
            tx.send(Work::Run(Box::new(move || seen.send(i).unwrap())))
                .unwrap();
        }
        drop(seen_tx);
        assert_eq!(seen_rx.iter().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    }
}
