//! The queue between a [`super::LakeWriter`] and its background thread:
//! messages in order, bounded by the bytes of the tensors waiting.
//!
//! Plain `Mutex` + `Condvar`: the producer may be a training loop, a
//! synchronous importer or a task inside an async runtime; blocking a thread
//! while the queue is full is the same in each, and nothing needs a runtime
//! to wake it.
//!
//! Small messages (scalars) may be sent *deferred*: queued without waking the
//! consumer, which finds them at the next ordinary message, after
//! [`DEFERRED_MAX`] of them, or within [`DEFERRED_WAIT`]. Waking a thread per
//! scalar cost a training loop 14% of its steps on a 2-core machine (a loss
//! logged per step, measured in Python with `bench/python_recorder.py`).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Deferred messages queued before the consumer is woken for them.
pub(crate) const DEFERRED_MAX: usize = 1024;

/// The longest a deferred message waits for the consumer to look.
pub(crate) const DEFERRED_WAIT: Duration = Duration::from_millis(50);

/// A FIFO of `T` holding at most `budget` bytes of messages (as their
/// senders count them), shared by one producer and one consumer.
#[derive(Debug)]
pub(crate) struct ByteQueue<T> {
    state: Mutex<State<T>>,
    /// Signalled when bytes are released or the consumer hangs up.
    space: Condvar,
    /// Signalled when a message arrives or the producer hangs up.
    ready: Condvar,
    budget: usize,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// Deferred messages sent since the consumer was last woken.
    deferred: usize,
    /// Bytes of the messages queued or being processed, not yet released.
    held: usize,
    producer_gone: bool,
    consumer_gone: bool,
}

/// Why a send failed: the consumer is gone (it stopped, after an error).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Disconnected;

impl<T> ByteQueue<T> {
    /// A queue that holds at most `budget` bytes (at least one message, however large).
    pub fn new(budget: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                deferred: 0,
                held: 0,
                producer_gone: false,
                consumer_gone: false,
            }),
            space: Condvar::new(),
            ready: Condvar::new(),
            budget,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding the lock leaves plain data behind: keep going.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends `item`, counted as `bytes` until [`ByteQueue::release`]d, waiting
    /// while that would pass the budget. A message larger than the budget
    /// waits for an empty queue, then goes alone.
    pub fn send(&self, item: T, bytes: usize) -> Result<(), Disconnected> {
        let mut state = self.lock();
        while !state.consumer_gone && state.held > 0 && state.held + bytes > self.budget {
            state = self.space.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if state.consumer_gone {
            return Err(Disconnected);
        }
        state.held += bytes;
        state.items.push_back(item);
        state.deferred = 0;
        self.ready.notify_one();
        Ok(())
    }

    /// Appends a message that counts no bytes without waking the consumer
    /// (see the module docs): it is received in order, at the latest
    /// [`DEFERRED_WAIT`] later.
    pub fn send_deferred(&self, item: T) -> Result<(), Disconnected> {
        let mut state = self.lock();
        if state.consumer_gone {
            return Err(Disconnected);
        }
        state.items.push_back(item);
        state.deferred += 1;
        if state.deferred >= DEFERRED_MAX {
            state.deferred = 0;
            self.ready.notify_one();
        }
        Ok(())
    }

    /// The next message, waiting for one; `None` once the producer hung up and
    /// the queue is empty.
    pub fn recv(&self) -> Option<T> {
        let mut state = self.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                return Some(item);
            }
            if state.producer_gone {
                return None;
            }
            // Timed, so that deferred messages are found without a wake-up.
            state = self.ready.wait_timeout(state, DEFERRED_WAIT).unwrap_or_else(|poisoned| poisoned.into_inner()).0;
        }
    }

    /// Frees `bytes` of the budget (the consumer is done with a message).
    pub fn release(&self, bytes: usize) {
        let mut state = self.lock();
        state.held = state.held.saturating_sub(bytes);
        self.space.notify_one();
    }

    /// The producer will send no more.
    pub fn close_producer(&self) {
        self.lock().producer_gone = true;
        self.ready.notify_one();
    }

    /// The consumer will receive no more: senders fail instead of waiting.
    pub fn close_consumer(&self) {
        let mut state = self.lock();
        state.consumer_gone = true;
        state.items.clear();
        self.space.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_full_queue_blocks_the_sender_until_bytes_are_released() {
        let q = Arc::new(ByteQueue::new(10));
        q.send(1, 6).unwrap();
        let sender = {
            let q = q.clone();
            std::thread::spawn(move || q.send(2, 6))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!sender.is_finished(), "6 + 6 bytes passed a budget of 10");
        assert_eq!(q.recv(), Some(1));
        q.release(6);
        sender.join().unwrap().unwrap();
        assert_eq!(q.recv(), Some(2));
    }

    #[test]
    fn a_message_larger_than_the_budget_goes_alone() {
        let q = ByteQueue::new(10);
        q.send("big", 100).unwrap();
        assert_eq!(q.recv(), Some("big"));
        q.release(100);
        q.send("next", 100).unwrap();
    }

    #[test]
    fn the_consumer_sees_the_end_and_a_sender_sees_a_gone_consumer() {
        let q = Arc::new(ByteQueue::new(4));
        q.send(1, 4).unwrap();
        q.close_producer();
        assert_eq!((q.recv(), q.recv()), (Some(1), None));
        let waiting = {
            let q = q.clone();
            std::thread::spawn(move || q.send(2, 4))
        };
        std::thread::sleep(Duration::from_millis(50));
        q.close_consumer();
        assert_eq!(waiting.join().unwrap(), Err(Disconnected));
    }

    #[test]
    fn deferred_messages_arrive_in_order_without_an_ordinary_one() {
        let q = Arc::new(ByteQueue::new(10));
        let consumer = {
            let q = q.clone();
            std::thread::spawn(move || (q.recv(), q.recv(), q.recv()))
        };
        // Let the consumer fall asleep first: the deferred sends do not wake it, its timeout does.
        std::thread::sleep(Duration::from_millis(20));
        let sent = std::time::Instant::now();
        q.send_deferred(1).unwrap();
        q.send_deferred(2).unwrap();
        q.send(3, 4).unwrap();
        assert_eq!(consumer.join().unwrap(), (Some(1), Some(2), Some(3)));
        assert!(sent.elapsed() < Duration::from_secs(5));

        let consumer = {
            let q = q.clone();
            std::thread::spawn(move || q.recv())
        };
        std::thread::sleep(Duration::from_millis(20));
        q.send_deferred(4).unwrap();
        assert_eq!(consumer.join().unwrap(), Some(4), "found by the timed wait alone");
        q.close_consumer();
        assert_eq!(q.send_deferred(5), Err(Disconnected));
    }
}
