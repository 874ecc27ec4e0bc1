//! Kilowatt as a real child process (`kilowatt serve`), for tests that kill it with SIGKILL
//! and start it again: its own fresh database, and loopback ports chosen once so that every
//! start listens where chargers and clients reconnect. The process's log is appended to a
//! file under the test target directory, named after the database, and its path is printed
//! when the process cannot start. The process is killed when the value is dropped.

use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kilowatt_actors::clock::Clock;

use super::{TestApp, TestDatabase, base_vars};

/// How long a start may take before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A Kilowatt process and the [`TestApp`] a test uses to reach it (`server` is `None`: the
/// server runs in the child, on the system clock).
pub struct KilowattProcess {
    pub app: TestApp,
    child: Option<Child>,
    log: PathBuf,
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

impl KilowattProcess {
    /// Creates a fresh database and starts Kilowatt on it, with the test settings plus
    /// `overrides`; answers once it is ready.
    pub async fn start_with(overrides: &[(&str, &str)]) -> KilowattProcess {
        let db = TestDatabase::create().await;
        let (http_port, ocpp_port) = (free_port(), free_port());
        let mut vars = base_vars(&db.url);
        vars.insert("KILOWATT_HTTP_ADDR".into(), format!("127.0.0.1:{http_port}"));
        vars.insert("KILOWATT_OCPP_ADDR".into(), format!("127.0.0.1:{ocpp_port}"));
        vars.insert("KILOWATT_LOG".into(), "info".into());
        vars.insert("KILOWATT_LOG_FORMAT".into(), "json".into());
        for (key, value) in overrides {
            vars.insert((*key).to_owned(), (*value).to_owned());
        }
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.log", db.name));
        let app = TestApp {
            server: None,
            db,
            clock: Clock::system(),
            base_url: format!("http://127.0.0.1:{http_port}"),
            ocpp_url: format!("ws://127.0.0.1:{ocpp_port}"),
            client: awc::Client::builder().timeout(Duration::from_secs(30)).finish(),
            vars,
        };
        let mut process = KilowattProcess { app, child: None, log };
        process.start().await;
        process
    }

    /// Starts the process (again) and waits until `/readyz` answers 200.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "Kilowatt is already running");
        let log = OpenOptions::new().create(true).append(true).open(&self.log).expect("open the process log");
        let child = Command::new(env!("CARGO_BIN_EXE_kilowatt"))
            .arg("serve")
            .env_clear()
            .envs(&self.app.vars)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn kilowatt");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("Kilowatt exited at start-up ({status}); see {}", self.log.display());
            }
            if self.ready().await {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "Kilowatt not ready; see {}", self.log.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ready(&self) -> bool {
        let client = awc::Client::builder().timeout(Duration::from_secs(2)).finish();
        matches!(client.get(self.app.url("/readyz")).send().await, Ok(response) if response.status().is_success())
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL kilowatt");
            child.wait().expect("reap kilowatt");
        }
    }

    /// Where the process writes its log.
    pub fn log_path(&self) -> &PathBuf {
        &self.log
    }
}

impl Drop for KilowattProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
