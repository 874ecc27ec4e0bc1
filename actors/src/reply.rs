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
//!
//! A caller woken by its answer still waits for one pass over its thread's queue before it runs.
//! What must not wait for that, such as a charger's CALLRESULT once its readings are committed,
//! goes in an arrival hook ([`channel_with_hook`]): the inbox runs it with the answer, on the
//! caller's thread, before it wakes the caller.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
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
    /// Arrival hooks of this thread's callers whose answers have not arrived, by key: each a
    /// `Box<dyn FnOnce(&T)>` for its answer's type. They stay on the caller's thread (they may
    /// hold what cannot leave it); a [`Reply`] carries only the key.
    static HOOKS: RefCell<HashMap<u64, Box<dyn Any>>> = RefCell::new(HashMap::new());
    static NEXT_HOOK: Cell<u64> = const { Cell::new(0) };
}

/// Runs the arrival hook `key` of a caller on this thread with its answer, if it is still there.
fn run_hook<T: 'static>(key: u64, answer: &T) {
    let Some(hook) = HOOKS.with(|hooks| hooks.borrow_mut().remove(&key)) else { return };
    if let Ok(hook) = hook.downcast::<Box<dyn FnOnce(&T)>>() {
        hook(answer);
    }
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

/// Where one answer goes: the caller's channel, the caller thread's inbox if it has one, and
/// the key of the caller's arrival hook if it set one.
pub struct Reply<T> {
    sender: oneshot::Sender<T>,
    caller: Option<Inbox>,
    hook: Option<u64>,
}

impl<T> Reply<T> {
    /// Answers the caller on this thread: its hook first, then its channel.
    fn deliver(sender: oneshot::Sender<T>, hook: Option<u64>, answer: T)
    where
        T: 'static,
    {
        if let Some(key) = hook {
            run_hook(key, &answer);
        }
        let _ = sender.send(answer);
    }
}

/// A reply for the calling task, and the receiver it awaits.
pub fn channel<T>() -> (Reply<T>, oneshot::Receiver<T>) {
    let (sender, receiver) = oneshot::channel();
    (Reply { sender, caller: Inbox::current(), hook: None }, receiver)
}

/// A reply for the calling task whose answer `on_arrival` sees first, on this thread, as soon as
/// the thread's inbox takes it: before the caller's task runs again, which under load is one
/// pass over the thread's queue of ready tasks later. On a thread without an actix runtime there
/// is no inbox, and the hook is dropped unrun. It is also dropped, unrun, with the [`Arrival`]:
/// a caller that stops waiting is not called back.
pub fn channel_with_hook<T: 'static>(on_arrival: impl FnOnce(&T) + 'static) -> (Reply<T>, Arrival<T>) {
    let (mut reply, receiver) = channel();
    let hook = reply.caller.is_some().then(|| {
        let key = NEXT_HOOK.with(|next| next.replace(next.get().wrapping_add(1)));
        let hook: Box<dyn FnOnce(&T)> = Box::new(on_arrival);
        HOOKS.with(|hooks| hooks.borrow_mut().insert(key, Box::new(hook)));
        key
    });
    reply.hook = hook;
    (reply, Arrival { receiver, hook })
}

/// The answer a caller of [`channel_with_hook`] awaits; dropping it drops the hook if it has not
/// run.
pub struct Arrival<T> {
    receiver: oneshot::Receiver<T>,
    hook: Option<u64>,
}

impl<T> Future for Arrival<T> {
    type Output = Result<T, oneshot::error::RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver).poll(cx)
    }
}

impl<T> Drop for Arrival<T> {
    fn drop(&mut self) {
        if let Some(key) = self.hook {
            // `try_with`: a thread being torn down has dropped its hooks already.
            let _ = HOOKS.try_with(|hooks| hooks.borrow_mut().remove(&key));
        }
    }
}

/// One caller thread's inbox and the answers it delivers there.
type ThreadAnswers<T> = (Inbox, Vec<(oneshot::Sender<T>, Option<u64>, T)>);

/// Answers callers, each on its own thread: one message to each caller thread's inbox, which
/// delivers that thread's answers there. A caller on the current thread, or on a thread without
/// an actix runtime, is answered directly. A caller whose thread stopped hears that the channel
/// closed.
pub fn answer_all<T: Send + 'static>(answers: impl IntoIterator<Item = (Reply<T>, T)>) {
    let here = std::thread::current().id();
    let mut by_thread: Vec<ThreadAnswers<T>> = Vec::new();
    for (Reply { sender, caller, hook }, answer) in answers {
        let Some(inbox) = caller.filter(|inbox| inbox.thread != here) else {
            // A hook is only set where there is an inbox, so a caller answered here is on this
            // thread, and so is its hook.
            Reply::deliver(sender, hook, answer);
            continue;
        };
        match by_thread.iter_mut().find(|(known, _)| known.thread == inbox.thread) {
            Some((_, answers)) => answers.push((sender, hook, answer)),
            None => by_thread.push((inbox, vec![(sender, hook, answer)])),
        }
    }
    for (inbox, answers) in by_thread {
        // If the thread stopped, the answers are dropped with the message: their callers
        // hear that the channel closed.
        let _ = inbox.sender.send(Box::new(move || {
            for (sender, hook, answer) in answers {
                Reply::deliver(sender, hook, answer);
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
            crate::busy_thread::wait_for_runs(&runs, 10 * QUEUE);
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

    #[test]
    fn an_arrival_hook_runs_on_the_callers_thread_a_few_tasks_after_the_answer_is_sent() {
        const QUEUE: u64 = 2_000;
        const ATTEMPTS: usize = 5;
        let _system = actix_rt::System::new();
        let arbiter = actix_rt::Arbiter::new();
        let runs = Arc::new(AtomicU64::new(0));
        let (handed, reply) = mpsc::channel();
        let (hooked, hook_ran) = mpsc::channel();
        let (done, resumed) = mpsc::channel();
        let counted = runs.clone();
        arbiter.spawn(async move {
            crate::busy_thread::keep_busy(QUEUE, &counted);
            for _ in 0..ATTEMPTS {
                let (hooked, runs_then) = (hooked.clone(), counted.clone());
                let (reply, answer) = channel_with_hook::<u32>(move |answer| {
                    let at = runs_then.load(Ordering::SeqCst);
                    hooked.send((*answer, std::thread::current().id(), at)).unwrap();
                });
                handed.send(reply).unwrap();
                let answer = answer.await.unwrap();
                done.send((answer, std::thread::current().id(), counted.load(Ordering::SeqCst))).unwrap();
            }
        });
        let mut fastest = u64::MAX;
        for attempt in 0..ATTEMPTS {
            let reply = reply.recv_timeout(Duration::from_secs(5)).unwrap();
            crate::busy_thread::wait_for_runs(&runs, 10 * QUEUE);
            let sent_at = runs.load(Ordering::SeqCst);
            let answer = u32::try_from(attempt).unwrap();
            answer_all([(reply, answer)]);
            let (hook_answer, hook_thread, hooked_at) = hook_ran.recv_timeout(Duration::from_secs(5)).unwrap();
            let (caller_answer, caller_thread, resumed_at) = resumed.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!((hook_answer, caller_answer), (answer, answer));
            assert_eq!(hook_thread, caller_thread, "the hook ran on the caller's thread");
            assert!(hooked_at <= resumed_at, "the hook ran before the caller resumed");
            // The least over the attempts: this thread may be descheduled in any one of them.
            fastest = fastest.min(hooked_at - sent_at);
        }
        // The caller itself resumes a whole pass over the queue (about `QUEUE` runs) later.
        assert!(fastest < QUEUE / 2, "the hook ran {fastest} task runs after the answer was sent");
        arbiter.stop();
    }

    #[test]
    fn a_hook_whose_caller_stopped_waiting_is_dropped_unrun() {
        let _system = actix_rt::System::new();
        let arbiter = actix_rt::Arbiter::new();
        let (report, reported) = mpsc::channel();
        arbiter.spawn(async move {
            let ran = Arc::new(AtomicU64::new(0));
            // The caller stops waiting before the answer comes.
            let counted = ran.clone();
            let (reply, answer) = channel_with_hook::<u32>(move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
            });
            drop(answer);
            answer_all([(reply, 1)]);
            // The answer never comes: the writer dropped its reply.
            let counted = ran.clone();
            let (reply, answer) = channel_with_hook::<u32>(move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
            });
            drop(reply);
            let outcome = answer.await;
            let kept = HOOKS.with(|hooks| hooks.borrow().len());
            report.send((ran.load(Ordering::SeqCst), outcome.is_err(), kept)).unwrap();
        });
        let (ran, closed, kept) = reported.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(ran, 0, "no hook ran");
        assert!(closed, "the caller heard that its reply was dropped");
        assert_eq!(kept, 0, "no hook is kept");
        arbiter.stop();
    }
}
