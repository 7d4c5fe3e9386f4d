//! A small worker pool shared by everything that runs several things at once (the suites
//! of a run, doctor's checks): at most `jobs` items at a time, in order of submission, each
//! worker sending messages that the calling thread handles as they come.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Runs `work(index, item, send)` for every item on at most `jobs` threads and calls
/// `receive` on the calling thread for every message sent, in the order they arrive.
pub fn run<T: Sync, M: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(usize, &T, &dyn Fn(M)) + Sync,
    mut receive: impl FnMut(M),
) {
    let jobs = jobs.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<M>();
        for _ in 0..jobs {
            let (tx, next, work) = (tx.clone(), &next, &work);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(index) else { break };
                work(index, item, &|message| {
                    let _ = tx.send(message);
                });
            });
        }
        drop(tx);
        for message in rx {
            receive(message);
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_item_runs_once_and_every_message_arrives() {
        let items: Vec<u32> = (0..50).collect();
        let mut seen = Vec::new();
        super::run(
            &items,
            3,
            |i, item, send| send((i, item * 2)),
            |m| seen.push(m),
        );
        seen.sort();
        assert_eq!(
            seen,
            (0..50).map(|i| (i as usize, i * 2)).collect::<Vec<_>>()
        );
    }
}
