//! Start-up and shutdown: prepare the database, start the registry, bind the HTTP and OCPP
//! listeners, and on SIGINT/SIGTERM stop accepting, close charger sockets cleanly and let
//! in-flight requests finish.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use kilowatt_actors::bus::Bus;
use kilowatt_actors::charger::{ChargerEnv, ChargerSettings, ChargerWriters};
use kilowatt_actors::clock::Clock;
use kilowatt_actors::last_seen::LastSeen;
use kilowatt_actors::notifier::Notifier;
use kilowatt_actors::queue::QueueEnv;
use kilowatt_actors::registry::{self, Registry};
use kilowatt_actors::session::{SessionEnv, SessionSettings};
use kilowatt_actors::store::StoreError;
use kilowatt_actors::store::chargers;
use kilowatt_actors::store::database;
use kilowatt_actors::store::live_sessions;
use kilowatt_actors::store::ocpp_log::{self, OcppLog};
use kilowatt_actors::store::pool::{self, PoolSettings};
use kilowatt_actors::store::queue;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::http;
use crate::state::AppState;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be created, migrated or reached.
    #[error("database: {0}")]
    Database(#[from] StoreError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The charger writers' thread did not start.
    #[error("the charger writers' thread did not start")]
    WriterThread,
}

/// A running Kilowatt: its bound addresses and a way to stop it.
pub struct RunningServer {
    /// Where the web UI and API listen.
    pub http_addr: SocketAddr,
    /// Where chargers connect.
    pub ocpp_addr: SocketAddr,
    /// The shared state (tests reach the pool and clock through it).
    pub state: AppState,
    http_handle: ServerHandle,
    ocpp_handle: ServerHandle,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
    sweeper: Option<JoinHandle<()>>,
    /// Dropped last: the charger writers' thread stops with the server.
    _writers: WriterThread,
}

/// The thread the charger writers run on (see [`start_writers`]); stopped when dropped, so a
/// server that is stopped or dropped (tests start many in one process) leaves no thread behind
/// holding database connections.
struct WriterThread(actix_rt::Arbiter);

impl Drop for WriterThread {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Starts the charger writers (group commits and the presence batcher) on a thread of their own.
///
/// Their batches run one statement after another, each a round trip to PostgreSQL, and every
/// round trip is resumed by the thread that drives the connection. On the main thread, which
/// also runs the registry and every session actor, a loaded fleet (19,000 chargers sending 20,000
/// MeterValues a second) made each round trip wait about a millisecond behind actor messages: a
/// StartTransaction, about ten statements, took 12 ms of its batch's time, and a fleet starting
/// at once waited over 30 s for its answers. On their own thread the writers' connections are
/// resumed as soon as PostgreSQL answers.
async fn start_writers(
    writer_pool: kilowatt_actors::store::DbPool,
    meter_pools: kilowatt_actors::meter_writer::PoolFactory,
    last_seen_flush: std::time::Duration,
    session_totals_every: std::time::Duration,
    registry: actix::Addr<Registry>,
) -> Result<(WriterThread, ChargerWriters, LastSeen), StartError> {
    let thread = WriterThread(actix_rt::Arbiter::new());
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let spawned = thread.0.spawn_fn(move || {
        kilowatt_actors::runtime_probe::watch("writers");
        let last_seen = LastSeen::start(writer_pool.clone(), last_seen_flush);
        let _ = sender.send((
            ChargerWriters::start(
                writer_pool,
                meter_pools,
                chrono::Duration::from_std(session_totals_every).unwrap_or(chrono::Duration::MAX),
                registry,
            ),
            last_seen,
        ));
    });
    let started = if spawned { receiver.await.ok() } else { None };
    let (writers, last_seen) = started.ok_or(StartError::WriterThread)?;
    Ok((thread, writers, last_seen))
}

impl RunningServer {
    /// Stops gracefully: closes charger sockets, stops accepting, lets in-flight requests
    /// finish (up to the configured shutdown timeout).
    pub async fn stop(self) {
        let closed = self.state.registry.send(registry::Shutdown).await.unwrap_or(0);
        tracing::info!(chargers = closed, "shutting down: charger sockets told to close");
        tokio::join!(self.ocpp_handle.stop(true), self.http_handle.stop(true));
        // Deliveries under way stop here and resume from the database at the next start.
        let _ = self.state.notifier.send(kilowatt_actors::notifier::Shutdown).await;
        // Booking timers stop here and are rebuilt from the database at the next start.
        let _ = self.state.bookings.send(kilowatt_actors::booking::StopAll).await;
        if let Some(sweeper) = self.sweeper {
            sweeper.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        tracing::info!("stopped");
    }

    /// Runs until SIGINT or SIGTERM, then stops gracefully.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        wait_for_signal().await?;
        tracing::info!("signal received");
        self.stop().await;
        Ok(())
    }
}

async fn wait_for_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}

/// Creates and migrates the database, then starts everything. Must run inside an actix system.
pub async fn start(config: Config, clock: Clock) -> Result<RunningServer, StartError> {
    crate::limits::raise_open_files();
    let applied = database::prepare(config.database_url.expose()).await?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied migrations");
    }
    let pool = pool::build_pool(
        config.database_url.expose(),
        PoolSettings { max_size: config.db_pool_size, timeout: config.db_timeout },
    )?;
    crate::metrics::handle();
    // This thread runs the registry, the sessions' actors and the other single actors.
    kilowatt_actors::runtime_probe::watch("main");
    // One node without Redis: nothing can be connected before we listen.
    if config.redis_url.is_none() {
        let mut conn = pool::connection(&pool).await?;
        chargers::mark_all_offline(&mut conn).await?;
    }
    let registry = Registry::start_supervised();
    let bus = Bus::default();
    // The charger writers' batches (identities, boots, statuses, meter values, transactions,
    // presence) get connections of their own, one for every batch that can be in flight:
    // handshakes and API calls queueing for the main pool must never hold up the one batch that
    // would answer them all.
    let writer_pool = pool::build_pool(
        config.database_url.expose(),
        PoolSettings { max_size: kilowatt_actors::charger::WRITER_CONNECTIONS, timeout: config.db_timeout },
    )?;
    // The meter writer's batches run on connections whose kept statements keep plans that suit
    // every batch, so they need no transaction to say so: one round trip a batch (two when it
    // has sessions the writer has not seen yet), not six (see `record_meter_batch`). The meter
    // writer's own thread builds the pool (see `MeterWriter`).
    let meter_pools: kilowatt_actors::meter_writer::PoolFactory = {
        let (url, timeout) = (config.database_url.expose().to_owned(), config.db_timeout);
        Arc::new(move || {
            pool::build_batch_pool(
                &url,
                PoolSettings { max_size: kilowatt_actors::charger::METER_CONNECTIONS, timeout },
            )
        })
    };
    let (writer_thread, writes, last_seen) = start_writers(
        writer_pool,
        meter_pools,
        config.ocpp.last_seen_flush,
        config.ocpp.session_totals_every,
        registry.clone(),
    )
    .await?;
    let charger_env = Arc::new(ChargerEnv {
        pool: pool.clone(),
        clock: clock.clone(),
        bus: bus.clone(),
        registry: registry.clone(),
        log: OcppLog::start(pool.clone()),
        last_seen,
        writes,
        credentials: kilowatt_actors::charger::credentials::Credentials::new(config.secret_key.expose().as_bytes()),
        settings: ChargerSettings {
            heartbeat_interval: config.ocpp.heartbeat_interval,
            ping_interval: config.ocpp.ping_interval,
            call_timeout: config.ocpp.call_timeout,
            max_frame_bytes: config.ocpp.max_frame_bytes,
            min_start_balance: config.policy.min_start_balance,
            rate_limit_per_second: config.ocpp.rate_limit_per_second,
            rate_limit_burst: config.ocpp.rate_limit_burst,
            outbox_high_water_bytes: config.ocpp.outbox_high_water_bytes,
            unlogged_actions: config.ocpp.unlogged_actions.clone(),
        },
    });
    start_sessions(&config, &pool, &clock, &bus, &registry).await?;
    let notifier = actix::Actor::start(Notifier::new(pool.clone(), clock.clone(), notifier_settings(&config)));
    start_queues(&config, &pool, &clock, &bus, &registry, &notifier).await?;
    let bookings = start_booking_timers(&config, &pool, &clock, &bus, &registry, &notifier);
    let admission = http::admission::Admission::new(config.ocpp.connecting_limit);
    let state = AppState {
        config: Arc::new(config),
        pool,
        registry,
        clock,
        bus,
        chargers: charger_env,
        notifier,
        bookings,
        admission,
    };
    // Periodic sweeps share one task (aborted at shutdown): log retention, payment
    // reconciliation, the metrics probe.
    let sweeper = actix_web::rt::spawn({
        let (log_state, payments_state, probe_state) = (state.clone(), state.clone(), state.clone());
        async move {
            tokio::join!(
                prune_message_log(log_state),
                crate::payments::reconcile_forever(payments_state),
                crate::metrics::probe_forever(probe_state),
            );
        }
    });
    let config = &state.config;
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let workers = if config.workers == 0 { cores } else { config.workers };
    // Half the cores for the chargers' sockets: the rest of a charger's work (the group-commit
    // writers, the registry and the sessions' actors) runs on threads of its own, and
    // PostgreSQL usually shares the machine. On 2 cores at 20,000 meter values a second, one
    // OCPP thread instead of two answered with a p99 of 98–115 ms instead of 131–327 ms, on
    // less CPU per message (BENCHMARKS.md).
    let ocpp_workers = if config.ocpp_workers == 0 { (cores / 2).max(1) } else { config.ocpp_workers };

    let (http, http_addr) = listen(&state, config.http_addr, workers, http::http_routes)?;
    let (ocpp, ocpp_addr) = listen_ocpp(&state, config.ocpp_addr, ocpp_workers)?;
    let (http_handle, ocpp_handle) = (http.handle(), ocpp.handle());
    let tasks = vec![actix_web::rt::spawn(http), actix_web::rt::spawn(ocpp)];
    let sweeper = Some(sweeper);
    tracing::info!(%http_addr, %ocpp_addr, "Kilowatt is listening");
    Ok(RunningServer { http_addr, ocpp_addr, state, http_handle, ocpp_handle, tasks, sweeper, _writers: writer_thread })
}

/// Gives the registry what session actors need and rebuilds an actor for every session that
/// was under way when Kilowatt last stopped: nothing is lost across a restart.
async fn start_sessions(
    config: &Config,
    pool: &kilowatt_actors::store::DbPool,
    clock: &Clock,
    bus: &Bus,
    registry: &actix::Addr<Registry>,
) -> Result<(), StartError> {
    let std_to_chrono = |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let settings = SessionSettings {
        start_timeout: std_to_chrono(config.policy.start_timeout),
        // A stop the charger accepted gets as long to arrive as a start.
        stop_timeout: std_to_chrono(config.policy.start_timeout),
        offline_timeout: std_to_chrono(config.policy.offline_session_timeout),
        meter_stall_timeout: std_to_chrono(config.policy.meter_stall_timeout),
        reaction_time: chrono::Duration::seconds(SESSION_STOP_REACTION_SECONDS),
    };
    let env = SessionEnv { pool: pool.clone(), clock: clock.clone(), bus: bus.clone(), settings };
    registry.do_send(registry::UseSessionEnv(Arc::new(env)));
    let mut conn = pool::connection(pool).await?;
    let open = live_sessions::open_ids(&mut conn).await?;
    if !open.is_empty() {
        tracing::info!(sessions = open.len(), "resuming sessions under way");
    }
    for session_id in open {
        registry.do_send(registry::OpenSession(session_id));
    }
    Ok(())
}

/// Gives the registry what queue actors need and rebuilds every charger's queue that had
/// drivers waiting (or holding a connector) when Kilowatt last stopped.
async fn start_queues(
    config: &Config,
    pool: &kilowatt_actors::store::DbPool,
    clock: &Clock,
    bus: &Bus,
    registry: &actix::Addr<Registry>,
    notifier: &actix::Addr<Notifier>,
) -> Result<(), StartError> {
    let hold = chrono::Duration::from_std(config.policy.queue_hold).unwrap_or(chrono::Duration::minutes(5));
    let env = QueueEnv { pool: pool.clone(), clock: clock.clone(), bus: bus.clone(), notifier: notifier.clone(), hold };
    registry.do_send(registry::UseQueueEnv(Arc::new(env)));
    let mut conn = pool::connection(pool).await?;
    for charge_point_id in queue::chargers_with_queues(&mut conn).await? {
        registry.do_send(registry::QueueChanged(charge_point_id));
    }
    Ok(())
}

/// Starts the booking timers' supervisor, which rebuilds a timer for every live booking and
/// sweeps every minute for anything a timer missed.
fn start_booking_timers(
    config: &Config,
    pool: &kilowatt_actors::store::DbPool,
    clock: &Clock,
    bus: &Bus,
    registry: &actix::Addr<Registry>,
    notifier: &actix::Addr<Notifier>,
) -> actix::Addr<kilowatt_actors::booking::BookingTimers> {
    use kilowatt_actors::booking::{BookingEnv, BookingSettings, BookingTimers};
    let to_chrono = |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let settings = BookingSettings {
        grace_period: to_chrono(config.policy.grace_period),
        refund_cutoff: to_chrono(config.policy.booking_refund_cutoff),
        public_url: config.public_url.clone(),
    };
    let env = BookingEnv {
        pool: pool.clone(),
        clock: clock.clone(),
        bus: bus.clone(),
        registry: registry.clone(),
        notifier: notifier.clone(),
        settings,
    };
    actix::Actor::start(BookingTimers::new(Arc::new(env)))
}

/// How long a charger may take to act on RemoteStopTransaction; the prepaid margin covers
/// this much charging on top of one meter interval.
const SESSION_STOP_REACTION_SECONDS: i64 = 30;

/// Binds one listener serving `routes` with the shared state, metrics and request logs.
fn listen(
    state: &AppState,
    addr: SocketAddr,
    workers: usize,
    routes: fn(&mut web::ServiceConfig),
) -> Result<(actix_web::dev::Server, SocketAddr), StartError> {
    let data = web::Data::new(state.clone());
    let server = HttpServer::new(move || {
        // Called on each worker's thread as it starts.
        kilowatt_actors::runtime_probe::watch("http");
        App::new().app_data(data.clone()).wrap(from_fn(crate::metrics::observe_http)).configure(routes)
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(state.config.shutdown_timeout.as_secs())
    .bind(addr)
    .map_err(|source| StartError::Bind { addr, source })?;
    let bound = server.addrs().first().copied().unwrap_or(addr);
    Ok((server.run(), bound))
}

/// Binds the OCPP listener. It is `listen` with one difference: a request asking for a
/// connection upgrade is handed, with its connection, to `http::ocpp::take_over`, which answers
/// the handshake and serves the charger on the bare socket. The HTTP dispatcher, and its two
/// 8 KiB buffers, are gone for the life of the connection; with 19,000 idle chargers they were
/// nine tenths of the server's memory. Everything else (`/healthz`, a plain GET) is routed as
/// on any listener. Sockets are admitted a few hundred at a time (`http::admission`).
fn listen_ocpp(
    state: &AppState,
    addr: SocketAddr,
    workers: usize,
) -> Result<(actix_web::dev::Server, SocketAddr), StartError> {
    use actix_service::{IntoServiceFactory, ServiceFactoryExt, fn_service, map_config};
    use actix_web::dev::AppConfig;

    let bind_error = |source| StartError::Bind { addr, source };
    let listener = tcp_listener(addr).map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let data = web::Data::new(state.clone());
    let admission = state.admission.clone();
    let server = actix_server::Server::build()
        .workers(workers)
        .backlog(LISTEN_BACKLOG)
        .disable_signals()
        .shutdown_timeout(state.config.shutdown_timeout.as_secs())
        .listen("ocpp", listener, move || {
            // Called on each worker's thread as it starts: the chargers' thread(s).
            kilowatt_actors::runtime_probe::watch("ocpp");
            let app = App::new()
                .app_data(data.clone())
                .wrap(from_fn(http::admission::release_for_plain_requests))
                .wrap(from_fn(crate::metrics::observe_http))
                .configure(http::ocpp_routes)
                .into_factory()
                .map_err(|error| error.error_response());
            let upgrade_state = data.clone();
            let http = actix_http::HttpService::build()
                .local_addr(bound)
                .on_connect_ext(|io: &http::admission::AdmittedStream, data| {
                    data.insert(io.place().clone());
                })
                .upgrade(fn_service(move |(req, framed)| http::ocpp::take_over(upgrade_state.clone(), req, framed)))
                .finish(map_config(app, |_| AppConfig::default()));
            let admission = admission.clone();
            fn_service(move |io: actix_rt::net::TcpStream| {
                let admission = admission.clone();
                async move {
                    let peer = io.peer_addr().ok();
                    // A socket whose charger hung up while it waited is dropped here (the error
                    // goes nowhere: actix-server discards a connection's outcome).
                    let admitted = admission.admit(io).await.ok_or_else(|| {
                        actix_http::error::DispatchError::Io(std::io::ErrorKind::ConnectionAborted.into())
                    })?;
                    Ok((admitted, actix_http::Protocol::Http1, peer))
                }
            })
            .and_then(http)
        })
        .map_err(bind_error)?;
    Ok((server.run(), bound))
}

/// Connections a listener lets wait to be accepted (the kernel caps it at `somaxconn`): a
/// connect storm of 19,000 chargers arrives faster than one accept loop takes them.
const LISTEN_BACKLOG: u32 = 2048;

/// A listening socket for `addr`, with `SO_REUSEADDR` so a restart can bind at once.
fn tcp_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)?.into_std()
}

/// Deletes OCPP message log rows older than the configured retention, hourly.
async fn prune_message_log(state: AppState) {
    let retention =
        chrono::Duration::from_std(state.config.ocpp.message_log_retention).unwrap_or(chrono::Duration::days(30));
    let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        let before = state.clock.now() - retention;
        let pruned = async {
            let mut conn = pool::connection(&state.pool).await?;
            ocpp_log::prune(&mut conn, before).await
        }
        .await;
        match pruned {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "pruned the OCPP message log"),
            Err(error) => tracing::warn!(%error, "could not prune the OCPP message log"),
        }
    }
}

/// How the notifier sends email and SMS, from the configuration (email is off without an SMTP host).
fn notifier_settings(config: &Config) -> kilowatt_actors::notifier::NotifierSettings {
    use crate::config::{SmsProviderKind, SmtpTls};
    use kilowatt_actors::notifier::email::{EmailSettings, EmailTls};
    use kilowatt_actors::notifier::plan::RetryPolicy;
    use kilowatt_actors::notifier::sms::SmsSettings;
    let smtp = &config.smtp;
    let email = smtp.host.clone().map(|host| EmailSettings {
        host,
        port: smtp.port,
        tls: match smtp.tls {
            SmtpTls::None => EmailTls::None,
            SmtpTls::StartTls => EmailTls::StartTls,
            SmtpTls::Tls => EmailTls::Tls,
        },
        username: smtp.username.clone(),
        password: smtp.password.expose().to_owned(),
        from: smtp.from.clone(),
        timeout: std::time::Duration::from_secs(15),
    });
    let sms = match (config.sms.provider, &config.sms.url) {
        (SmsProviderKind::Http, Some(url)) => {
            SmsSettings::Http { url: url.clone(), api_key: config.sms.api_key.expose().to_owned() }
        }
        _ => SmsSettings::Log,
    };
    kilowatt_actors::notifier::NotifierSettings {
        email,
        sms,
        support_email: config.support_email.clone(),
        retry: RetryPolicy {
            first_delay: chrono::Duration::from_std(config.notify_first_retry)
                .unwrap_or_else(|_| RetryPolicy::default().first_delay),
            max_attempts: i32::try_from(config.notify_attempts).unwrap_or(RetryPolicy::default().max_attempts),
        },
    }
}
