//! A small W3C WebDriver client over reqwest, for the browser tests: Debian's
//! `chromium` driven by `chromedriver`, headless, one profile per session.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver, killed on drop.
pub struct Driver {
    process: Child,
    base: String,
    http: reqwest::Client,
}

impl Driver {
    /// Starts chromedriver, or says why it cannot (`None` outside CI, panic in CI).
    pub async fn start() -> Option<Self> {
        let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(binary) = binary else {
            if std::env::var_os("CI").is_some() {
                panic!("chromedriver is missing: .ci/run installs Debian's chromium and chromium-driver");
            }
            eprintln!("chromedriver is not installed (apt-get install -y chromium chromium-driver): skipping");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self {
            process,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            if let Ok(response) = driver.http.get(format!("{}/status", driver.base)).send().await
                && response.status().is_success()
            {
                return Some(driver);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not come up within 15 s");
    }

    /// A new browser with a profile of its own (a separate "device").
    pub async fn browser(&self) -> Browser {
        let profile = std::env::temp_dir().join(format!("gatehouse-chromium-{}", gatehouse::ids::random_token(8)));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    "--window-size=1000,1300", format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let response: Value = self
            .http
            .post(format!("{}/session", self.base))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {response}"));
        Browser {
            base: format!("{}/session/{id}", self.base),
            http: self.http.clone(),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

pub struct Browser {
    base: String,
    http: reqwest::Client,
}

impl Browser {
    async fn post(&self, path: &str, body: Value) -> Value {
        let response: Value = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if response["value"].get("error").is_some() {
            panic!("WebDriver {path}: {response}");
        }
        response["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    pub async fn url(&self) -> String {
        let response: Value = self
            .http
            .get(format!("{}/url", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["value"].as_str().unwrap().to_owned()
    }

    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        found[ELEMENT_KEY].as_str().unwrap().to_owned()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/value"), json!({"text": text})).await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    /// Waits (up to 10 s) until the script returns true.
    pub async fn wait_for(&self, what: &str, script: &str) {
        let started = Instant::now();
        loop {
            let ok = self.run(script, json!([])).await;
            if ok == Value::Bool(true) {
                return;
            }
            if started.elapsed() > Duration::from_secs(10) {
                let url = self.url().await;
                let body = self
                    .run("return document.body ? document.body.innerText : ''", json!([]))
                    .await;
                panic!("timed out waiting for {what} at {url}: {body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_for_url(&self, fragment: &str) {
        let script = format!("return location.href.includes({});", json!(fragment));
        self.wait_for(&format!("a URL with {fragment}"), &script).await;
    }

    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let response: Value = self
            .http
            .get(format!("{}/screenshot", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(response["value"].as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    pub async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}
