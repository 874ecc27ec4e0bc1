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

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_rt::net::TcpStream;
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
            Ok(place) => Some(place),
            Err(_) => {
                let _waiting = Waiting::new();
                let place = tokio::select! {
                    place = self.places.clone().acquire_owned() => place.ok(),
                    () = hung_up(&io) => return abandoned(),
                };
                // It may have hung up since it was last looked at.
                if has_hung_up(&io) {
                    return abandoned();
                }
                place
            }
        };
        Some(AdmittedStream { io, place })
    }
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
    place: Option<OwnedSemaphorePermit>,
}

impl AdmittedStream {
    /// The socket, and its place for whoever serves the charger.
    pub fn into_parts(self) -> (TcpStream, Option<OwnedSemaphorePermit>) {
        (self.io, self.place)
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
