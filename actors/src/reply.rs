//! Answers sent from one thread to tasks waiting on others, each delivered on its caller's own
//! thread.
//!
//! A busy tokio runtime takes wake-ups that come from other threads only once in 31 tasks
//! (`global_queue_interval`) while it has tasks of its own. Answering each waiting task straight
//! from a writer's thread queued each answer as such a wake-up: on a two-core machine whose one
//! charger thread was never idle at 10,000 MeterValues a second, a charger's task resumed 2.5 s
//! (median) after its batch was committed. [`answer_all`] sends one message to each caller
//! thread's arbiter for a whole batch instead; that one wake-up is taken within 31 tasks, and
//! the answers it sends there wake their callers as the thread's own tasks.

use std::thread::ThreadId;

use actix_rt::ArbiterHandle;
use tokio::sync::oneshot;

/// Where one answer goes: the caller's channel, and the caller's thread if it runs an arbiter.
pub struct Reply<T> {
    sender: oneshot::Sender<T>,
    caller: Option<(ThreadId, ArbiterHandle)>,
}

/// A reply for the calling task, and the receiver it awaits.
pub fn channel<T>() -> (Reply<T>, oneshot::Receiver<T>) {
    let (sender, receiver) = oneshot::channel();
    let caller = actix_rt::Arbiter::try_current().map(|arbiter| (std::thread::current().id(), arbiter));
    (Reply { sender, caller }, receiver)
}

/// One caller thread's arbiter and the answers it sends there.
type ThreadAnswers<T> = (ThreadId, ArbiterHandle, Vec<(oneshot::Sender<T>, T)>);

/// Answers callers, each on its own thread: one message to each caller thread's arbiter, which
/// sends that thread's answers there. A caller on the current thread, or on a thread without
/// an arbiter, is answered directly. A caller whose arbiter stopped hears that the channel
/// closed.
pub fn answer_all<T: Send + 'static>(answers: impl IntoIterator<Item = (Reply<T>, T)>) {
    let here = std::thread::current().id();
    let mut by_thread: Vec<ThreadAnswers<T>> = Vec::new();
    for (Reply { sender, caller }, answer) in answers {
        let Some((thread, arbiter)) = caller.filter(|(thread, _)| *thread != here) else {
            let _ = sender.send(answer);
            continue;
        };
        match by_thread.iter_mut().find(|(id, ..)| *id == thread) {
            Some((.., answers)) => answers.push((sender, answer)),
            None => by_thread.push((thread, arbiter, vec![(sender, answer)])),
        }
    }
    for (_, arbiter, answers) in by_thread {
        arbiter.spawn_fn(move || {
            for (sender, answer) in answers {
                let _ = sender.send(answer);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
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
}
