//! Answers sent from one thread to tasks waiting on others, each delivered on its caller's own
//! thread.
//!
//! A busy tokio runtime takes wake-ups that come from other threads only once in 31 tasks
//! (`global_queue_interval`, and a `LocalSet`'s own `REMOTE_FIRST_INTERVAL`) while it has tasks
//! of its own. Answering each waiting task straight from a writer's thread queued each answer as
//! such a wake-up: on a two-core machine whose one charger thread was never idle at 10,000
//! MeterValues a second, a charger's task resumed 2.5 s (median) after its batch was committed.
//! [`answer_all`] sends one message per batch to each caller thread's [`Inbox`] instead: a task
//! of that thread's own, whose one wake-up from the writer's thread is taken within 31 tasks,
//! and whose answers then wake their callers as the thread's own tasks.
//!
//! The inbox is a task that lives as long as its thread, not one spawned for each message (as
//! an arbiter's `spawn_fn` does): a spawned task starts behind every task the thread already has
//! ready, so each batch's answers waited for the thread's whole queue twice, once to start
//! delivering and once more for each caller to run.

use std::cell::RefCell;
use std::thread::ThreadId;

use tokio::sync::{mpsc, oneshot};

/// Answers for one thread's callers, sent there as one message.
type Delivery = Box<dyn FnOnce() + Send>;

/// Where answers for the callers on one thread go: the thread's inbox task.
#[derive(Clone)]
struct Inbox {
    thread: ThreadId,
    sender: mpsc::UnboundedSender<Delivery>,
}

thread_local! {
    /// This thread's inbox, started by the first caller on it.
    static INBOX: RefCell<Option<Inbox>> = const { RefCell::new(None) };
}

impl Inbox {
    /// This thread's inbox, started if it has none (or its runtime stopped); none on a thread
    /// without an actix runtime, whose callers are answered directly.
    fn current() -> Option<Inbox> {
        INBOX.with(|inbox| {
            let mut inbox = inbox.borrow_mut();
            if let Some(open) = inbox.as_ref().filter(|open| !open.sender.is_closed()) {
                return Some(open.clone());
            }
            actix_rt::Arbiter::try_current()?;
            let (sender, mut deliveries) = mpsc::unbounded_channel::<Delivery>();
            actix_rt::spawn(async move {
                while let Some(deliver) = deliveries.recv().await {
                    deliver();
                }
            });
            let open = Inbox { thread: std::thread::current().id(), sender };
            *inbox = Some(open.clone());
            Some(open)
        })
    }
}

/// Where one answer goes: the caller's channel, and the caller thread's inbox if it has one.
pub struct Reply<T> {
    sender: oneshot::Sender<T>,
    caller: Option<Inbox>,
}

/// A reply for the calling task, and the receiver it awaits.
pub fn channel<T>() -> (Reply<T>, oneshot::Receiver<T>) {
    let (sender, receiver) = oneshot::channel();
    (Reply { sender, caller: Inbox::current() }, receiver)
}

/// One caller thread's inbox and the answers it delivers there.
type ThreadAnswers<T> = (Inbox, Vec<(oneshot::Sender<T>, T)>);

/// Answers callers, each on its own thread: one message to each caller thread's inbox, which
/// delivers that thread's answers there. A caller on the current thread, or on a thread without
/// an actix runtime, is answered directly. A caller whose thread stopped hears that the channel
/// closed.
pub fn answer_all<T: Send + 'static>(answers: impl IntoIterator<Item = (Reply<T>, T)>) {
    let here = std::thread::current().id();
    let mut by_thread: Vec<ThreadAnswers<T>> = Vec::new();
    for (Reply { sender, caller }, answer) in answers {
        let Some(inbox) = caller.filter(|inbox| inbox.thread != here) else {
            let _ = sender.send(answer);
            continue;
        };
        match by_thread.iter_mut().find(|(known, _)| known.thread == inbox.thread) {
            Some((_, answers)) => answers.push((sender, answer)),
            None => by_thread.push((inbox, vec![(sender, answer)])),
        }
    }
    for (inbox, answers) in by_thread {
        // If the thread stopped, the answers are dropped with the message: their callers
        // hear that the channel closed.
        let _ = inbox.sender.send(Box::new(move || {
            for (sender, answer) in answers {
                let _ = sender.send(answer);
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    use super::*;

    /// Starts an arbiter whose task makes `n` replies, hands them over, and reports on `done`
    /// the answers it receives and the thread it received them on.
    fn waiting_callers(n: usize, done: mpsc::Sender<(ThreadId, Vec<u32>)>) -> (actix_rt::Arbiter, Vec<Reply<u32>>) {
        let arbiter = actix_rt::Arbiter::new();
        let (handed, replies) = mpsc::channel();
        arbiter.spawn(async move {
            let (mut mine, mut receivers) = (Vec::new(), Vec::new());
            for _ in 0..n {
                let (reply, receiver) = channel();
                mine.push(reply);
                receivers.push(receiver);
            }
            handed.send(mine).unwrap();
            let mut answers = Vec::new();
            for receiver in receivers {
                answers.push(receiver.await.unwrap());
            }
            done.send((std::thread::current().id(), answers)).unwrap();
        });
        (arbiter, replies.recv_timeout(Duration::from_secs(5)).unwrap())
    }

    #[test]
    fn callers_on_two_arbiters_and_on_a_plain_thread_each_get_their_own_answers() {
        let _system = actix_rt::System::new();
        let (done, reports) = mpsc::channel();
        let (first, first_replies) = waiting_callers(3, done.clone());
        let (second, second_replies) = waiting_callers(2, done);
        // A caller on a thread without an arbiter is answered directly.
        let (local, mut local_answer) = std::thread::spawn(channel::<u32>).join().unwrap();

        let mut answers: Vec<(Reply<u32>, u32)> = first_replies.into_iter().zip([1, 2, 3]).collect();
        answers.extend(second_replies.into_iter().zip([10, 20]));
        answers.push((local, 99));
        // From a thread that is neither caller's, as a writer's would be.
        std::thread::spawn(move || answer_all(answers)).join().unwrap();

        assert_eq!(local_answer.try_recv(), Ok(99));
        let mut got: Vec<(ThreadId, Vec<u32>)> =
            (0..2).map(|_| reports.recv_timeout(Duration::from_secs(5)).unwrap()).collect();
        got.sort_by_key(|(_, answers)| answers.len());
        assert_eq!(got[0].1, vec![10, 20]);
        assert_eq!(got[1].1, vec![1, 2, 3]);
        assert_ne!(got[0].0, got[1].0, "two threads waited");
        first.stop();
        second.stop();
    }

    #[test]
    fn a_busy_thread_resumes_its_caller_after_one_pass_over_its_queue_not_two() {
        const QUEUE: u64 = 2_000;
        const ATTEMPTS: usize = 5;
        let _system = actix_rt::System::new();
        let arbiter = actix_rt::Arbiter::new();
        let runs = Arc::new(AtomicU64::new(0));
        let (handed, reply) = mpsc::channel();
        let (done, resumed) = mpsc::channel();
        let counted = runs.clone();
        arbiter.spawn(async move {
            // A queue that never drains, as a charger thread's under load.
            crate::busy_thread::keep_busy(QUEUE, &counted);
            for _ in 0..ATTEMPTS {
                let (reply, answer) = channel::<u32>();
                handed.send(reply).unwrap();
                let answer = answer.await.unwrap();
                done.send((answer, counted.load(Ordering::SeqCst))).unwrap();
            }
        });
        let mut measured = 0;
        for _ in 0..ATTEMPTS {
            let reply = reply.recv_timeout(Duration::from_secs(5)).unwrap();
            let start = runs.load(Ordering::SeqCst) + 10 * QUEUE;
            while runs.load(Ordering::SeqCst) < start {
                std::thread::yield_now();
            }
            // From another thread than the caller's, while the caller's thread is busy.
            let sent_at = runs.load(Ordering::SeqCst);
            answer_all([(reply, 7)]);
            let sent_by = runs.load(Ordering::SeqCst);
            let (answer, resumed_at) = resumed.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(answer, 7);
            if sent_by - sent_at > QUEUE / 10 {
                // This thread was descheduled while sending (other tests share the cores).
                continue;
            }
            // One pass: the inbox runs within a few dozen tasks, the caller after the queue
            // ahead of it. A task spawned to deliver would itself have waited a whole pass.
            let waited = resumed_at - sent_at;
            assert!(waited < QUEUE * 3 / 2, "the caller resumed {waited} task runs after its answer was sent");
            measured += 1;
        }
        assert!(measured > 0, "every attempt's send was interrupted");
        arbiter.stop();
    }
}
