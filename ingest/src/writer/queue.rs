//! The queue between a [`super::LakeWriter`] and its background thread:
//! messages in order, bounded by the bytes of the tensors waiting.
//!
//! Plain `Mutex` + `Condvar`: the producer may be a training loop, a
//! synchronous importer or a task inside an async runtime; blocking a thread
//! while the queue is full is the same in each, and nothing needs a runtime
//! to wake it.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

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
            state: Mutex::new(State { items: VecDeque::new(), held: 0, producer_gone: false, consumer_gone: false }),
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
        self.ready.notify_one();
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
            state = self.ready.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
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
}
