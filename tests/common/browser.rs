//! A real headless Chromium for browser tests, driven over WebDriver: each `Browser` starts its
//! own chromedriver (`$CHROMEDRIVER`, default `/usr/bin/chromedriver`) on a free loopback port
//! and kills it when dropped. `.ci/test` installs Debian's chromium and chromium-driver.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// A browser session and the chromedriver behind it.
pub struct Browser {
    pub client: Client,
    base_url: String,
    driver: Child,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; pages are addressed relative to `base_url`.
    pub async fn start(base_url: &str) -> Browser {
        let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("port").port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {chromedriver} (apt-get install chromium-driver): {e}"));
        let mut ready = false;
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(ready, "chromedriver did not listen on port {port}");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--window-size=1280,900"] }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session with headless Chromium");
        Browser { client, base_url: base_url.trim_end_matches('/').to_owned(), driver }
    }

    /// Opens a page of the server under test.
    pub async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base_url)).await.expect("page opens");
    }

    /// The current page's path (with the query, if any).
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current URL");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits (up to 10 s) until the current path is `path`.
    pub async fn wait_for_path(&self, path: &str) {
        for _ in 0..400 {
            if self.path().await == path {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected to be at {path}, still at {}", self.path().await);
    }

    /// Types into the field `css` (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("field cleared");
        field.send_keys(text).await.unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// The visible text of the element `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap_or_else(|e| panic!("text of {css}: {e}"))
    }

    /// Waits (up to 10 s) until the element `css` shows `expected`.
    pub async fn wait_for_text(&self, css: &str, expected: &str) {
        let mut last = String::new();
        for _ in 0..400 {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                last = element.text().await.unwrap_or_default();
                if last == expected {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{css} shows {last:?}, expected {expected:?}");
    }

    /// The element `css`, waiting up to 10 s for it to appear.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on {}: {e}", self.base_url))
    }

    /// The value of the browser's cookie `name`.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        let cookies = self.client.get_all_cookies().await.expect("cookies");
        cookies.into_iter().find(|c| c.name() == name).map(|c| c.value().to_owned())
    }

    /// Signs in through the login form (a user the API registered has PIN 1234) and waits to
    /// leave the login page.
    pub async fn sign_in(&self, username: &str, pin: &str) {
        self.goto("/login").await;
        self.fill("#login", username).await;
        self.fill("#pin", pin).await;
        self.click("#submit").await;
        for _ in 0..400 {
            if !self.path().await.starts_with("/login") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("still on the login page after signing in as {username}");
    }

    /// Saves a screenshot of the current page as a test artifact:
    /// `target/tmp/screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot saved");
    }

    /// Ends the WebDriver session cleanly (the browser exits); chromedriver dies on drop.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
