//! A small worker pool shared by everything that runs several things at once (the suites
//! of a run, doctor's checks): at most `jobs` items at a time, in order of submission, each
//! worker sending messages that the calling thread handles as they come.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `work(index, item, send)` for every item on at most `jobs` threads and calls
/// `receive` on the calling thread for every message sent, in the order they arrive.
pub fn run<T: Sync, M: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(usize, &T, &dyn Fn(M)) + Sync,
    mut receive: impl FnMut(M),
) {
    run_ticking(
        items,
        jobs,
        None,
        |_, i, item, send| work(i, item, send),
        |heard| {
            if let Heard::Message(message) = heard {
                receive(message);
            }
        },
    );
}

/// What the calling thread of [`run_ticking`] hears.
pub enum Heard<M> {
    Message(M),
    /// `every` passed since the last tick: the caller's chance to look at the time.
    Tick,
}

/// As [`run`], and with `every`, `receive` also hears a [`Heard::Tick`] at that cadence
/// while the work runs, however many or few messages arrive. `work` is also told which
/// worker (0 to `jobs - 1`, a lane of the pool) runs the item: `work(worker, index, item,
/// send)`.
pub fn run_ticking<T: Sync, M: Send>(
    items: &[T],
    jobs: usize,
    every: Option<Duration>,
    work: impl Fn(usize, usize, &T, &dyn Fn(M)) + Sync,
    mut receive: impl FnMut(Heard<M>),
) {
    let jobs = jobs.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<M>();
        for worker in 0..jobs {
            let (tx, next, work) = (tx.clone(), &next, &work);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(index) else { break };
                work(worker, index, item, &|message| {
                    let _ = tx.send(message);
                });
            });
        }
        drop(tx);
        let Some(every) = every else {
            for message in rx {
                receive(Heard::Message(message));
            }
            return;
        };
        let mut next_tick = Instant::now() + every;
        loop {
            let left = next_tick.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(message) => receive(Heard::Message(message)),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if Instant::now() >= next_tick {
                receive(Heard::Tick);
                next_tick = Instant::now() + every;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    #[test]
    fn ticks_come_while_work_runs_even_without_messages() {
        let mut ticks = 0;
        let mut messages = 0;
        super::run_ticking(
            &[()],
            1,
            Some(Duration::from_millis(10)),
            |_, _, _, send| {
                std::thread::sleep(Duration::from_millis(200));
                send(());
            },
            |heard| match heard {
                super::Heard::Tick => ticks += 1,
                super::Heard::Message(()) => messages += 1,
            },
        );
        assert_eq!(messages, 1);
        // 200 ms of work at a 10 ms cadence: many ticks, however busy the machine.
        assert!(ticks >= 3, "{ticks}");
    }
}
