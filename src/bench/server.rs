//! Kilowatt under test: `kilowatt serve` started as a child process of this same binary on free
//! loopback ports, with its output in a log file; killed (SIGKILL) and started again for the
//! restart scenario, and stopped with SIGTERM at the end.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long a start may take before the benchmark gives up (migrations are already applied).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Kilowatt child process.
pub struct Server {
    exe: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Child,
    /// Web UI and JSON API.
    pub http_addr: SocketAddr,
    /// OCPP listener.
    pub ocpp_addr: SocketAddr,
    client: awc::Client,
}

/// A free port on 127.0.0.1 (bound, read, released: nothing else on this machine races for it).
fn free_port() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener.local_addr().map_err(|e| e.to_string())
}

impl Server {
    /// Starts `kilowatt serve` against `database_url` and waits until it is ready. `extra_env`
    /// (`NAME=value`) overrides the benchmark's settings.
    pub async fn start(database_url: &str, log: &Path, extra_env: &[(String, String)]) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find the kilowatt binary: {e}"))?;
        let (http_addr, ocpp_addr) = (free_port()?, free_port()?);
        let (secret, _) = kilowatt_actors::accounts::new_token();
        let mut env: Vec<(String, String)> = [
            ("DATABASE_URL", database_url.to_owned()),
            ("KILOWATT_HTTP_ADDR", http_addr.to_string()),
            ("KILOWATT_OCPP_ADDR", ocpp_addr.to_string()),
            ("KILOWATT_PUBLIC_URL", format!("http://{http_addr}")),
            ("KILOWATT_LOG", "warn".to_owned()),
            // Every simulated charger is registered beforehand: an unknown one is a bench bug.
            ("KILOWATT_UNKNOWN_CHARGERS", "reject".to_owned()),
            ("KILOWATT_PAYMENT_PROVIDER", "sandbox".to_owned()),
            // Remote starts the charger never confirms (lost to the restart) fail quickly.
            ("KILOWATT_START_TIMEOUT_SECONDS", "15".to_owned()),
            ("KILOWATT_SHUTDOWN_TIMEOUT_SECONDS", "10".to_owned()),
            ("KILOWATT_SECRET_KEY", secret),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        for (name, value) in extra_env {
            env.retain(|(existing, _)| existing != name);
            env.push((name.clone(), value.clone()));
        }
        let client = awc::Client::builder().timeout(Duration::from_secs(5)).finish();
        let child = spawn(&exe, &env, log)?;
        let mut server = Server { exe, env, log: log.to_owned(), child, http_addr, ocpp_addr, client };
        server.wait_ready().await?;
        Ok(server)
    }

    /// The process ID of the running server.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Base URL of the HTTP listener.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Base WebSocket URL for chargers.
    pub fn ocpp_url(&self) -> String {
        format!("ws://{}", self.ocpp_addr)
    }

    /// Where the server's output goes.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/readyz", self.base_url());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the server exited ({status}) before it was ready; see {}", self.log.display()));
            }
            if let Ok(response) = self.client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("the server was not ready within {READY_TIMEOUT:?}; see {}", self.log.display()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the server with SIGKILL (no clean shutdown: sockets drop, in-flight work is lost)
    /// and waits for it to be gone.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Starts the server again with the same settings and ports; answers once it is ready.
    pub async fn restart(&mut self) -> Result<(), String> {
        self.child = spawn(&self.exe, &self.env, &self.log)?;
        self.wait_ready().await
    }

    /// Stops the server with SIGTERM (a clean shutdown), or SIGKILL if it takes too long.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
            if tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await.is_ok() {
                return;
            }
        }
        self.kill().await;
    }
}

fn spawn(exe: &Path, env: &[(String, String)], log: &Path) -> Result<Child, String> {
    let open = || {
        File::options().create(true).append(true).open(log).map_err(|e| format!("cannot open {}: {e}", log.display()))
    };
    let mut command = Command::new(exe);
    command.arg("serve").stdin(Stdio::null()).stdout(open()?).stderr(open()?).kill_on_drop(true);
    // Only the benchmark's settings: none of the caller's Kilowatt environment (a REDIS_URL
    // would make it a cluster node, a config file another database).
    for (name, _) in std::env::vars() {
        if name.starts_with("KILOWATT_") || name == "DATABASE_URL" || name == "REDIS_URL" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().map(|(name, value)| (name, value)));
    command.spawn().map_err(|e| format!("cannot start {}: {e}", exe.display()))
}
