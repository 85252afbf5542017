//! Real headless Chromium through chromedriver (Debian's chromium and chromium-driver).
//! Where no chromedriver is installed the browser tests say they are skipped; with `CI`
//! set they fail instead.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Browser {
    /// `None` (after saying so) when chromedriver is missing outside CI.
    pub async fn start(test: &str) -> Option<Self> {
        if !std::path::Path::new(CHROMEDRIVER).exists() {
            if std::env::var_os("CI").is_some() {
                panic!("{test}: {CHROMEDRIVER} is missing, and CI is set");
            }
            eprintln!(
                "{test}: skipped, {CHROMEDRIVER} is not installed (apt-get install chromium chromium-driver)"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                // A Swedish-speaking member of staff.
                "prefs": { "intl.accept_languages": "sv-FI,sv" },
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1200,900",
                    "--lang=sv-FI"
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            let mut builder = ClientBuilder::new(connector.clone());
            builder.capabilities(caps.clone());
            if let Ok(client) = builder.connect(&url).await {
                return Some(Self { client, driver });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = driver.kill();
        let _ = driver.wait();
        panic!("{test}: could not connect to chromedriver");
    }

    /// Fills in the login form at `login` (a full URL) and presses the button.
    pub async fn log_in(&self, login: &str, email: &str) {
        let c = &self.client;
        c.goto(login).await.unwrap();
        for (field, text) in [("#email", email), ("#password", super::PASSWORD)] {
            c.find(fantoccini::Locator::Css(field))
                .await
                .unwrap()
                .send_keys(text)
                .await
                .unwrap();
        }
        c.find(fantoccini::Locator::Css("button.primary"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    pub async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
