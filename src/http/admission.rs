//! Admission on the OCPP listener: at most so many chargers are *connecting* at once, from
//! the moment their socket is accepted until their first CALL is answered (a charger that says
//! nothing gives its place back after a moment: see `ChargerActor::connecting_place`). The
//! others wait, holding nothing but their socket, before even their handshake is read.
//!
//! Why: in a connect storm (a restart, a power cut coming back) every charger's handshake and
//! BootNotification compete for the same cores. Served all at once, each one waits behind all
//! the others, so every BootNotification takes about as long as the whole storm. Admitted a few
//! hundred at a time, each charger that has begun is answered in a fraction of it; the storm as
//! a whole takes somewhat longer (measured in BENCHMARKS.md: the limit trades one for the other).
//!
//! A charger that gives up waiting (its handshake timed out) usually connects again at once. Its
//! old socket is dropped unserved as soon as the hang-up is seen, so that a storm does not serve
//! every charger's handshake twice, once for a socket already closed.
//!
//! The places are the node's, not the listener's: a charger connecting on the HTTP listener's
//! `/ocpp/{chargePointId}` waits for one too ([`Admission::place`]). A connection on the OCPP
//! listener that turns out to carry a plain request (a load balancer's health check, kept
//! alive) gives its place back at that request ([`release_for_plain_requests`]).

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_rt::net::TcpStream;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The connecting places, shared by the listener's workers.
#[derive(Clone)]
pub struct Admission {
    places: Arc<Semaphore>,
}

impl Admission {
    /// `limit` chargers may be connecting at once (at least one).
    pub fn new(limit: usize) -> Self {
        Admission { places: Arc::new(Semaphore::new(limit.max(1))) }
    }

    /// Waits for a place for `io` (counted in `ocpp_connecting_waiting` meanwhile); the place
    /// goes with the socket. A socket whose charger hangs up while it waits is dropped without
    /// its handshake being served, and counted in `ocpp_connecting_abandoned_total`: `None`.
    pub async fn admit(&self, io: TcpStream) -> Option<AdmittedStream> {
        let place = match self.places.clone().try_acquire_owned() {
            Ok(place) => place,
            Err(_) => {
                let place = tokio::select! {
                    place = self.wait_for_place() => place?,
                    () = hung_up(&io) => return abandoned(),
                };
                // It may have hung up since it was last looked at.
                if has_hung_up(&io) {
                    return abandoned();
                }
                place
            }
        };
        Some(AdmittedStream { io, place: ConnectingPlace(Rc::new(Cell::new(Some(place)))) })
    }

    /// Waits for a place for a charger whose socket is not the OCPP listener's (counted in
    /// `ocpp_connecting_waiting` meanwhile). `None` only if the places are closed, which they
    /// never are.
    pub async fn place(&self) -> Option<OwnedSemaphorePermit> {
        match self.places.clone().try_acquire_owned() {
            Ok(place) => Some(place),
            Err(_) => self.wait_for_place().await,
        }
    }

    async fn wait_for_place(&self) -> Option<OwnedSemaphorePermit> {
        let _waiting = Waiting::new();
        self.places.clone().acquire_owned().await.ok()
    }
}

/// A connection's connecting place on the OCPP listener, shared by its socket and the requests
/// read from it (as connection data): a charger's upgrade takes it to the ChargerActor, which
/// gives it back once the charger is under way; a plain request gives it back at once.
#[derive(Clone)]
pub struct ConnectingPlace(Rc<Cell<Option<OwnedSemaphorePermit>>>);

impl ConnectingPlace {
    /// Takes the place, if the connection still holds one.
    pub fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.take()
    }

    /// Whether the connection still holds its place.
    pub fn is_held(&self) -> bool {
        let place = self.0.take();
        let held = place.is_some();
        self.0.set(place);
        held
    }

    /// Holds `place` from now on (one taken again by an upgrade that came after a plain request).
    pub fn hold(&self, place: Option<OwnedSemaphorePermit>) {
        self.0.set(place);
    }
}

/// Middleware on the OCPP listener's app, which sees every request but a WebSocket upgrade: the
/// request's connection gives its connecting place back. Places are for chargers starting up;
/// a health check that keeps its connection alive would otherwise hold one for as long as it
/// keeps polling, and a few hundred such would keep every charger out.
pub async fn release_for_plain_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(place) = req.conn_data::<ConnectingPlace>() {
        drop(place.take());
    }
    next.call(req).await
}

/// How often a waiting socket is looked at to see whether its charger hung up. A charger gives
/// up on a handshake after some seconds (the simulator after 10) and usually connects again:
/// serving the old socket's handshake once a place comes would start a charger whose socket is
/// already closed, and take a place from one still waiting.
const HANG_UP_CHECK: std::time::Duration = std::time::Duration::from_millis(500);

/// Resolves once the peer of `io` has closed its side (its request may still be unread).
async fn hung_up(io: &TcpStream) {
    // A socket is readable as soon as its handshake arrives, so readiness cannot be awaited for
    // the hang-up alone: it is looked at every so often instead.
    while !has_hung_up(io) {
        tokio::time::sleep(HANG_UP_CHECK).await;
    }
}

/// Whether the peer of `io` has closed its side, as far as the I/O driver has seen.
fn has_hung_up(io: &TcpStream) -> bool {
    use futures_util::FutureExt;
    match io.ready(tokio::io::Interest::READABLE).now_or_never() {
        Some(Ok(ready)) => ready.is_read_closed(),
        Some(Err(_)) => true,
        None => false,
    }
}

/// Counts a socket dropped because its charger hung up while it waited.
fn abandoned() -> Option<AdmittedStream> {
    metrics::counter!("ocpp_connecting_abandoned_total").increment(1);
    tracing::debug!("a charger hung up while it waited for a connecting place: its socket is dropped");
    None
}

/// One socket counted in `ocpp_connecting_waiting` for as long as it lives (a socket dropped
/// while it waits, at shutdown, is uncounted too).
struct Waiting(metrics::Gauge);

impl Waiting {
    fn new() -> Self {
        let gauge = metrics::gauge!("ocpp_connecting_waiting");
        gauge.increment(1.0);
        Waiting(gauge)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// An accepted socket and its connecting place (given back as `ChargerActor::connecting_place`
/// says, or when the socket is dropped).
pub struct AdmittedStream {
    io: TcpStream,
    place: ConnectingPlace,
}

impl AdmittedStream {
    /// The connection's place, shared with the requests read from it.
    pub fn place(&self) -> &ConnectingPlace {
        &self.place
    }

    /// The socket, and its place (if it still holds one) for whoever serves the charger.
    pub fn into_parts(self) -> (TcpStream, Option<OwnedSemaphorePermit>) {
        (self.io, self.place.take())
    }
}

impl AsyncRead for AdmittedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for AdmittedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
