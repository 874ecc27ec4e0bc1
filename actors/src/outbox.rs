//! Back-pressure for WebSocket actors: a bounded outgoing queue between the actor and the HTTP
//! connection, with a high-water mark past which the peer is disconnected.
//!
//! Why not just count what the actor writes against what the HTTP body yields: with
//! `actix-web-actors`, the actor only runs when the HTTP dispatcher polls the response body, and
//! the dispatcher stops polling it once its own write buffer is full (a peer that stopped
//! reading). The actor then freezes with the socket — its timers never fire, a command sent to
//! it never times out, a dead peer is never noticed — while messages pile up for it elsewhere.
//! So [`start`] drives the actor's context on its own local task (the *pump*), which moves each
//! encoded chunk into this queue as the actor produces it; the response body only drains the
//! queue. The actor keeps running whatever the peer does, the queue's size is exactly the bytes
//! encoded but not yet taken by the connection, and when it passes `high_water_bytes` the
//! queue is dropped, the actor stopped (its `stopping`/`stopped` run as on any exit) and the
//! body fails, which closes the connection as soon as the dispatcher looks at it again.
//!
//! Usage (any actor whose context is `ws::WebsocketContext<Self>`):
//!
//! ```ignore
//! let options = SocketOptions { protocols: &["ocpp1.6"], max_frame_bytes: 65_536,
//!                               high_water_bytes: 256 * 1024, kind: "charger" };
//! outbox::start(&req, payload, &options, |outbox| MyActor { outbox, /* … */ })
//! ```
//!
//! [`serve`] is the same for a connection taken over from the HTTP dispatcher after the
//! handshake (the OCPP listener does this, so an idle charger holds no 8 KiB HTTP buffers):
//! the queue is written straight to the socket instead of through a response body.
//!
//! The actor keeps the [`Outbox`] it is given: [`Outbox::queued_bytes`] tells how far behind
//! the peer is (e.g. to skip optional pushes to a slow browser), and [`Outbox::finish_with`]
//! hands it work that must complete before the connection counts as closed (a graceful
//! shutdown waits for it), such as recording that a charger went offline.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker, ready};

use actix::Actor;
use actix_http::error::PayloadError;
use actix_rt::net::TcpStream;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws;
use futures_util::Stream;
use tokio::io::{AsyncRead, ReadBuf};

/// How to open a WebSocket served by an actor.
#[derive(Debug, Clone, Copy)]
pub struct SocketOptions<'a> {
    /// Sub-protocols this endpoint speaks (the first the client also offers is chosen).
    pub protocols: &'a [&'a str],
    /// Largest frame accepted from the peer; larger ones end the stream with `Overflow`.
    pub max_frame_bytes: usize,
    /// Bytes queued for a peer that is not reading, past which it is disconnected.
    pub high_water_bytes: usize,
    /// What kind of socket, for logs and the `ws_outbox_overflows_total` metric.
    pub kind: &'static str,
}

type ActorStream = Pin<Box<dyn Stream<Item = Result<Bytes, actix_web::Error>>>>;
type Linger = Pin<Box<dyn Future<Output = ()>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// The actor runs; chunks flow.
    Open,
    /// The actor stopped and its last chunks are queued.
    Ended,
    /// The peer fell more than the high-water mark behind (or encoding failed).
    Broken,
}

struct Shared {
    /// Encoded for the peer and not yet taken by the connection; on a served socket the first
    /// may be partly written already.
    chunks: VecDeque<Bytes>,
    queued: usize,
    /// The socket, when this side writes to it itself ([`serve`]) rather than through a response
    /// body ([`start`]).
    socket: Option<Rc<RefCell<TcpStream>>>,
    high_water: usize,
    flow: Flow,
    /// The actor's context has ended (its last frames are queued); it may still be finishing
    /// its [`Outbox::finish_with`] work, but nothing more is sent from outside it.
    actor_done: bool,
    overflowed: bool,
    body_gone: bool,
    body_waker: Option<Waker>,
    pump_waker: Option<Waker>,
    linger: Option<Linger>,
}

impl Shared {
    /// The connection is closed: stop the actor and drop what it queued.
    fn connection_gone(&mut self) {
        self.body_gone = true;
        // Nothing more is written, not even directly, and the socket closes with the reader.
        self.socket = None;
        self.chunks = VecDeque::new();
        self.queued = 0;
        if let Some(waker) = self.pump_waker.take() {
            waker.wake();
        }
    }

    fn wake_body(&mut self) {
        if let Some(waker) = self.body_waker.take() {
            waker.wake();
        }
    }

    /// Hands a chunk the actor encoded to the connection.
    ///
    /// On a socket this side writes itself, with nothing queued ahead, the chunk is written at
    /// once: an answer leaves in the same run of the actor's task that produced it. Queued
    /// instead, it would wait for the writer's task to run, one more pass over the thread's
    /// ready tasks, which under load is most of an answer's latency (`runtime_queue_delay_seconds`;
    /// it was one of the three passes a MeterValues waited for). What the socket does not take at
    /// once is queued for the writer, which waits for the socket to be writable. An answer sent
    /// from outside the actor ([`Outbox::send_text`]) goes the same way.
    fn send(&mut self, mut chunk: Bytes) {
        if self.chunks.is_empty()
            && let Some(io) = self.socket.as_ref()
            && let Ok(io) = io.try_borrow()
        {
            match io.try_write(&chunk) {
                Ok(written) if written == chunk.len() => return,
                Ok(written) => {
                    let _ = chunk.split_to(written);
                }
                // Not writable now, or failed: the writer waits for it, or meets the error and ends.
                Err(_) => {}
            }
        }
        self.queued += chunk.len();
        self.chunks.push_back(chunk);
        self.wake_body();
    }
}

/// The actor's view of its outgoing queue.
#[derive(Clone)]
pub struct Outbox {
    shared: Rc<RefCell<Shared>>,
}

impl Outbox {
    /// Bytes encoded for the peer and not yet taken by the connection.
    pub fn queued_bytes(&self) -> usize {
        self.shared.borrow().queued
    }

    /// The high-water mark this socket was opened with.
    pub fn high_water_bytes(&self) -> usize {
        self.shared.borrow().high_water
    }

    /// Whether the socket is being closed because the peer fell too far behind.
    pub fn overflowed(&self) -> bool {
        self.shared.borrow().overflowed
    }

    /// Sends a text frame from outside the actor's context, such as an answer whose turn on a
    /// busy thread should not wait for the actor's task (see [`crate::reply::channel_with_hook`]).
    /// It goes out in order with everything the actor sent before: between two runs of the actor
    /// its context holds nothing unsent, because the pump takes each frame it encodes before it
    /// waits. Answers false, and sends nothing, once the actor has ended, the connection is
    /// gone, or the peer fell behind; also if called while the actor itself runs (use its
    /// context there).
    pub fn send_text(&self, text: &str) -> bool {
        let Ok(mut shared) = self.shared.try_borrow_mut() else { return false };
        if shared.flow != Flow::Open || shared.actor_done || shared.body_gone {
            return false;
        }
        let mut frame = BytesMut::with_capacity(text.len() + 4);
        actix_http::ws::Parser::write_message(&mut frame, text, actix_http::ws::OpCode::Text, true, false);
        shared.send(frame.freeze());
        if shared.queued > shared.high_water {
            // The pump disconnects the peer (it owns the actor, which must stop).
            if let Some(waker) = shared.pump_waker.take() {
                waker.wake();
            }
        }
        true
    }

    /// Work to finish before the connection counts as closed: it runs once the actor has
    /// stopped, and the response (so the connection, and a graceful shutdown) ends after it.
    /// Call it from `stopping` or `stopped`; a later call replaces an earlier one.
    pub fn finish_with(&self, work: impl Future<Output = ()> + 'static) {
        self.shared.borrow_mut().linger = Some(Box::pin(work));
    }
}

/// Performs the WebSocket handshake and starts the actor `make` builds around its [`Outbox`],
/// its context driven by its own task and its output bounded by `options.high_water_bytes`.
/// The connection stays with the HTTP dispatcher, which drains the queue as a response body.
pub fn start<A>(
    req: &HttpRequest,
    payload: web::Payload,
    options: &SocketOptions<'_>,
    make: impl FnOnce(Outbox) -> A,
) -> Result<HttpResponse, actix_web::Error>
where
    A: Actor<Context = ws::WebsocketContext<A>> + actix::StreamHandler<Result<ws::Message, ws::ProtocolError>>,
{
    let mut response = ws::handshake_with_protocols(req, options.protocols)?;
    let shared = open(payload, None, options, make);
    Ok(response.streaming(Body { shared }))
}

/// Serves a WebSocket whose handshake is already answered on a connection taken over from the
/// HTTP dispatcher: `io` is the socket and `received` what the dispatcher had read past the
/// handshake. The future ends when the connection does (after the actor's
/// [`Outbox::finish_with`] work).
///
/// Unlike [`start`], nothing holds a buffer while the charger is idle: reads go through one
/// scratch buffer per thread and only the bytes read are kept, and writes go straight from the
/// queue to the socket. The dispatcher's two 8 KiB buffers are what an idle connection cost
/// before.
pub fn serve<A, F>(
    io: TcpStream,
    received: Bytes,
    options: &SocketOptions<'_>,
    make: F,
) -> impl Future<Output = ()> + 'static + use<A, F>
where
    F: FnOnce(Outbox) -> A,
    A: Actor<Context = ws::WebsocketContext<A>> + actix::StreamHandler<Result<ws::Message, ws::ProtocolError>>,
{
    let io = Rc::new(RefCell::new(io));
    let reader = SocketReader { io: io.clone(), received };
    let shared = open(reader, Some(io.clone()), options, make);
    SocketWriter { io, shared }
}

/// Starts the actor on `payload` with its pump on its own task; returns the queue it fills.
/// With `socket`, chunks are written to it directly whenever nothing is queued ahead of them.
fn open<A, S>(
    payload: S,
    socket: Option<Rc<RefCell<TcpStream>>>,
    options: &SocketOptions<'_>,
    make: impl FnOnce(Outbox) -> A,
) -> Rc<RefCell<Shared>>
where
    A: Actor<Context = ws::WebsocketContext<A>> + actix::StreamHandler<Result<ws::Message, ws::ProtocolError>>,
    S: Stream<Item = Result<Bytes, PayloadError>> + 'static,
{
    let shared = Rc::new(RefCell::new(Shared {
        chunks: VecDeque::new(),
        queued: 0,
        socket,
        high_water: options.high_water_bytes,
        flow: Flow::Open,
        actor_done: false,
        overflowed: false,
        body_gone: false,
        body_waker: None,
        pump_waker: None,
        linger: None,
    }));
    let actor = make(Outbox { shared: shared.clone() });
    let codec = actix_http::ws::Codec::new().max_size(options.max_frame_bytes);
    let stream: ActorStream = Box::pin(ws::WebsocketContext::with_codec(actor, payload, codec));
    let pump = Pump { stream: Some(stream), shared: shared.clone(), kind: options.kind };
    let pump_shared = shared.clone();
    actix_rt::spawn(async move {
        pump.await;
        pump_shared.borrow_mut().actor_done = true;
        let linger = pump_shared.borrow_mut().linger.take();
        if let Some(work) = linger {
            work.await;
        }
        let mut shared = pump_shared.borrow_mut();
        if shared.flow == Flow::Open {
            shared.flow = Flow::Ended;
        }
        shared.wake_body();
    });
    shared
}

/// Drives the actor's context and moves what it encodes into the queue.
struct Pump {
    stream: Option<ActorStream>,
    shared: Rc<RefCell<Shared>>,
    kind: &'static str,
}

impl Pump {
    /// When the queue is past the high-water mark: drops it and the actor (the peer is
    /// disconnected), and answers true.
    fn overflow(&mut self) -> bool {
        let mut shared = self.shared.borrow_mut();
        if shared.queued <= shared.high_water {
            return false;
        }
        tracing::warn!(
            socket = self.kind,
            queued_bytes = shared.queued,
            high_water_bytes = shared.high_water,
            "peer is not reading its socket: disconnecting"
        );
        metrics::counter!("ws_outbox_overflows_total", "socket" => self.kind).increment(1);
        shared.chunks = VecDeque::new();
        shared.flow = Flow::Broken;
        shared.overflowed = true;
        drop(shared);
        self.stream = None;
        true
    }
}

impl Future for Pump {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if this.shared.borrow().body_gone {
                // The connection is gone: stop the actor (no borrow held while it stops).
                this.stream = None;
                return Poll::Ready(());
            }
            if this.overflow() {
                return Poll::Ready(());
            }
            let Some(stream) = this.stream.as_mut() else { return Poll::Ready(()) };
            match stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    this.shared.borrow_mut().send(chunk);
                    if this.overflow() {
                        return Poll::Ready(());
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    tracing::warn!(socket = this.kind, %error, "could not encode a WebSocket frame: disconnecting");
                    this.shared.borrow_mut().flow = Flow::Broken;
                    this.stream = None;
                    return Poll::Ready(());
                }
                Poll::Ready(None) => {
                    this.stream = None;
                    return Poll::Ready(());
                }
                Poll::Pending => {
                    let mut shared = this.shared.borrow_mut();
                    if !shared.pump_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        shared.pump_waker = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

/// The response body: drains the queue.
struct Body {
    shared: Rc<RefCell<Shared>>,
}

impl Stream for Body {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut shared = self.shared.borrow_mut();
        if shared.flow == Flow::Broken {
            shared.queued = 0;
            return Poll::Ready(Some(Err(actix_web::error::ErrorServiceUnavailable("WebSocket peer too far behind"))));
        }
        if let Some(chunk) = shared.chunks.pop_front() {
            shared.queued -= chunk.len();
            return Poll::Ready(Some(Ok(chunk)));
        }
        if shared.flow == Flow::Ended {
            return Poll::Ready(None);
        }
        if !shared.body_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            shared.body_waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        self.shared.borrow_mut().connection_gone();
    }
}

thread_local! {
    /// Where every socket served on this thread reads into; only the bytes read are kept.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_BYTES].into_boxed_slice());
}

/// The most read from a socket at once.
const SCRATCH_BYTES: usize = 16 * 1024;

/// What the peer sends, as the actor's payload stream.
///
/// Read with `poll_read`, not `poll_read_ready` and `try_read`: a read that fills less than
/// the buffer shows the socket drained, and `poll_read` then forgets the readiness, where
/// `try_read` keeps it until a read fails with `WouldBlock`. So each message a charger sends
/// costs one `recvfrom`, not two (measured with `perf stat` under the meter scenario: 2.7
/// `recvfrom` per MeterValues in the server before, PostgreSQL's included).
struct SocketReader {
    io: Rc<RefCell<TcpStream>>,
    /// Bytes read with the handshake, handed out first.
    received: Bytes,
}

impl Stream for SocketReader {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if !self.received.is_empty() {
            return Poll::Ready(Some(Ok(std::mem::take(&mut self.received))));
        }
        SCRATCH.with_borrow_mut(|scratch| {
            let mut read = ReadBuf::new(scratch);
            match ready!(Pin::new(&mut *self.io.borrow_mut()).poll_read(cx, &mut read)) {
                Err(error) => Poll::Ready(Some(Err(PayloadError::Io(error)))),
                Ok(()) if read.filled().is_empty() => Poll::Ready(None),
                Ok(()) => Poll::Ready(Some(Ok(Bytes::copy_from_slice(read.filled())))),
            }
        })
    }
}

/// Writes the queue to the socket; ends when the actor has ended and everything is written,
/// or at once when the peer fell too far behind or the socket failed. It runs only for what the
/// socket did not take when it was sent ([`Shared::send`]).
struct SocketWriter {
    io: Rc<RefCell<TcpStream>>,
    shared: Rc<RefCell<Shared>>,
}

impl Future for SocketWriter {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            let mut shared = this.shared.borrow_mut();
            if shared.flow == Flow::Broken {
                shared.queued = 0;
                return Poll::Ready(());
            }
            let Some(chunk) = shared.chunks.front_mut() else {
                if shared.flow == Flow::Ended {
                    return Poll::Ready(());
                }
                if !shared.body_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    shared.body_waker = Some(cx.waker().clone());
                }
                return Poll::Pending;
            };
            let io = this.io.borrow();
            match io.poll_write_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(error)) => {
                    tracing::debug!(%error, "WebSocket peer gone while writing");
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(())) => {}
            }
            let written = match io.try_write(chunk) {
                Ok(written) => written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => {
                    tracing::debug!(%error, "WebSocket peer gone while writing");
                    return Poll::Ready(());
                }
            };
            let _ = chunk.split_to(written);
            if chunk.is_empty() {
                shared.chunks.pop_front();
            }
            shared.queued -= written;
        }
    }
}

impl Drop for SocketWriter {
    fn drop(&mut self) {
        self.shared.borrow_mut().connection_gone();
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    use actix::{ActorContext, StreamHandler};

    use super::*;

    /// Answers each text message with the same text, and reports how many of the busy tasks had
    /// run when it did.
    struct Echo {
        _outbox: Outbox,
        runs: Arc<AtomicU64>,
        handled: mpsc::Sender<u64>,
    }

    impl Actor for Echo {
        type Context = ws::WebsocketContext<Self>;
    }

    impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Echo {
        fn handle(&mut self, message: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
            match message {
                Ok(ws::Message::Text(text)) => {
                    let _ = self.handled.send(self.runs.load(Ordering::SeqCst));
                    ctx.text(text);
                }
                _ => ctx.stop(),
            }
        }
    }

    /// A masked client text frame (RFC 6455 section 5.3).
    fn client_text_frame(text: &str) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut frame = vec![0x81, 0x80 | u8::try_from(text.len()).unwrap()];
        frame.extend(mask);
        frame.extend(text.bytes().enumerate().map(|(i, byte)| byte ^ mask[i % 4]));
        frame
    }

    #[test]
    fn an_answer_leaves_in_the_run_that_produced_it_not_a_pass_over_the_busy_thread_later() {
        const QUEUE: u64 = 2_000;
        const ATTEMPTS: usize = 5;
        let _system = actix_rt::System::new();
        let arbiter = actix_rt::Arbiter::new();
        let runs = Arc::new(AtomicU64::new(0));
        let (bound, address) = mpsc::channel();
        let (handled, handled_at) = mpsc::channel();
        let counted = runs.clone();
        arbiter.spawn(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            bound.send(listener.local_addr().unwrap()).unwrap();
            let (io, _) = listener.accept().await.unwrap();
            let options =
                SocketOptions { protocols: &[], max_frame_bytes: 1024, high_water_bytes: 1 << 20, kind: "test" };
            let runs = counted.clone();
            actix_rt::spawn(serve(io, Bytes::new(), &options, move |outbox| Echo { _outbox: outbox, runs, handled }));
            // A queue that never drains, as a charger thread's under load.
            crate::busy_thread::keep_busy(QUEUE, &counted);
        });
        let mut client = std::net::TcpStream::connect(address.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut fastest = u64::MAX;
        for attempt in 0..ATTEMPTS {
            crate::busy_thread::wait_for_runs(&runs, 10 * QUEUE);
            let text = format!("reading {attempt}");
            client.write_all(&client_text_frame(&text)).unwrap();
            let mut answer = vec![0; 2 + text.len()];
            client.read_exact(&mut answer).unwrap();
            let received_at = runs.load(Ordering::SeqCst);
            assert_eq!(&answer[2..], text.as_bytes());
            let handled_at = handled_at.recv_timeout(Duration::from_secs(5)).unwrap();
            // The least over the attempts: this thread may be descheduled in any one of them
            // (other tests share the cores), but never makes an answer look early.
            fastest = fastest.min(received_at - handled_at);
        }
        // Queued for the socket writer's task, the answer would have waited for the whole
        // queue ahead of it.
        assert!(fastest < QUEUE / 2, "the answer left {fastest} task runs after the actor produced it");
        arbiter.stop();
    }

    /// Answers each text message with "actor: " and the text, and tells the test's task on its
    /// thread; stops (closing the socket) on "stop", and then lingers until `release`.
    struct Relay {
        outbox: Outbox,
        told: tokio::sync::mpsc::UnboundedSender<()>,
        release: Option<tokio::sync::oneshot::Receiver<()>>,
    }

    impl Actor for Relay {
        type Context = ws::WebsocketContext<Self>;

        fn stopped(&mut self, _: &mut Self::Context) {
            let release = self.release.take();
            self.outbox.finish_with(async move {
                if let Some(release) = release {
                    let _ = release.await;
                }
            });
        }
    }

    impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Relay {
        fn handle(&mut self, message: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
            match message {
                Ok(ws::Message::Text(text)) if &*text == "stop" => {
                    ctx.close(None);
                    ctx.stop();
                }
                Ok(ws::Message::Text(text)) => ctx.text(format!("actor: {text}")),
                _ => ctx.stop(),
            }
            let _ = self.told.send(());
        }
    }

    /// Reads one unmasked server frame's opcode and payload (short frames only).
    fn read_frame(client: &mut std::net::TcpStream) -> (u8, Vec<u8>) {
        let mut header = [0; 2];
        client.read_exact(&mut header).unwrap();
        assert!(header[1] < 126, "a short unmasked frame");
        let mut payload = vec![0; usize::from(header[1])];
        client.read_exact(&mut payload).unwrap();
        (header[0], payload)
    }

    #[test]
    fn a_frame_sent_from_outside_the_actor_follows_the_actors_and_none_is_sent_once_it_ended() {
        let _system = actix_rt::System::new();
        let arbiter = actix_rt::Arbiter::new();
        let (bound, address) = mpsc::channel();
        let (sent, sent_results) = mpsc::channel();
        // `spawn_fn`: the task holds the (thread-bound) outbox across awaits.
        arbiter.spawn_fn(move || {
            actix_rt::spawn(relay_and_send_from_outside(bound, sent));
        });
        /// Serves one connection with a [`Relay`] and sends from outside it, reporting each
        /// send's result on `sent`.
        async fn relay_and_send_from_outside(bound: mpsc::Sender<std::net::SocketAddr>, sent: mpsc::Sender<bool>) {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            bound.send(listener.local_addr().unwrap()).unwrap();
            let (io, _) = listener.accept().await.unwrap();
            let options =
                SocketOptions { protocols: &[], max_frame_bytes: 1024, high_water_bytes: 1 << 20, kind: "test" };
            let (told, mut handled) = tokio::sync::mpsc::unbounded_channel();
            let (outbox_tx, outbox_rx) = tokio::sync::oneshot::channel();
            let (release, lingering) = tokio::sync::oneshot::channel();
            actix_rt::spawn(serve(io, Bytes::new(), &options, move |outbox| {
                let _ = outbox_tx.send(outbox.clone());
                Relay { outbox, told, release: Some(lingering) }
            }));
            let outbox = outbox_rx.await.unwrap();
            // After the actor answered "hello", as a writer's hook would between its runs.
            handled.recv().await.unwrap();
            sent.send(outbox.send_text("outside")).unwrap();
            // After the actor closed the socket and stopped, while its last work still runs.
            handled.recv().await.unwrap();
            sent.send(outbox.send_text("too late")).unwrap();
            let _ = release.send(());
        }
        let mut client = std::net::TcpStream::connect(address.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();

        client.write_all(&client_text_frame("hello")).unwrap();
        assert_eq!(read_frame(&mut client), (0x81, b"actor: hello".to_vec()));
        assert!(sent_results.recv_timeout(Duration::from_secs(5)).unwrap(), "sent while the actor runs");
        assert_eq!(read_frame(&mut client), (0x81, b"outside".to_vec()));

        client.write_all(&client_text_frame("stop")).unwrap();
        assert!(!sent_results.recv_timeout(Duration::from_secs(5)).unwrap(), "refused once the actor ended");
        assert_eq!(read_frame(&mut client).0, 0x88, "the close frame");
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "nothing after the close frame: {rest:?}");
        arbiter.stop();
    }
}
