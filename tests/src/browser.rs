//! A headless Chromium driven through `chromedriver` with the W3C WebDriver HTTP protocol, for
//! tests of the pages the host serves (the dashboard).
//!
//! [`Browser::start`] runs Debian's `chromedriver` (package `chromium-driver`) on a free loopback
//! port (it accepts local connections only) and opens one session of `chromium` in headless
//! mode; dropping the [`Browser`] ends the session and stops the driver. Only the few commands
//! the tests need are here: navigate, find elements by CSS, click, type, read text, run a script,
//! take a screenshot.
//!
//! Not for the JSON API: that is [`crate::client`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{self, Daemon};

/// The key W3C WebDriver names an element reference by.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long the driver may take to answer `/status`.
const DRIVER_STARTUP: Duration = Duration::from_secs(30);

/// A headless browser session and the driver serving it.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`
    session: String,
    driver: Option<Daemon>,
    _dir: tempfile::TempDir,
}

/// One element of the page, as the driver references it.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    names.iter().find_map(|name| process::which(name))
}

impl Browser {
    /// Starts `chromedriver` and a headless `chromium` session with a `width` x `height` window.
    /// Fails with what to install when either is missing.
    pub async fn start(width: u32, height: u32) -> Result<Browser, String> {
        let driver_bin = find_program(&["chromedriver"]).ok_or(
            "chromedriver is not on PATH: install Debian's chromium and chromium-driver \
             (scripts/install-deps --test)",
        )?;
        let chromium = find_program(&["chromium", "chromium-browser"]).ok_or(
            "chromium is not on PATH: install Debian's chromium (scripts/install-deps --test)",
        )?;
        let dir = process::fixture_dir("browser");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("build the WebDriver client: {e}"))?;
        let mut failures = Vec::new();
        for attempt in 1..=2 {
            let port = process::free_port();
            let log = dir.path().join(format!("chromedriver-{attempt}.log"));
            let mut command = Command::new(&driver_bin);
            command
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1");
            let mut driver = Daemon::spawn("chromedriver", command, &log);
            let base = format!("http://127.0.0.1:{port}");
            if let Err(why) = wait_ready(&http, &base, &mut driver).await {
                failures.push(format!("attempt {attempt}: {why}\n{}", driver.log_tail(20)));
                continue;
            }
            let profile = dir.path().join("profile");
            let capabilities = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--no-first-run", "--mute-audio",
                        "--disable-extensions", "--disable-background-networking",
                        format!("--window-size={width},{height}"),
                        format!("--user-data-dir={}", profile.display()),
                    ],
                },
            }}});
            let answer = command_json(&http, "POST", &format!("{base}/session"), &capabilities)
                .await
                .map_err(|e| format!("open a chromium session: {e}\n{}", driver.log_tail(30)))?;
            let id = answer["sessionId"]
                .as_str()
                .ok_or_else(|| format!("the new session has no sessionId: {answer}"))?;
            return Ok(Browser {
                http,
                session: format!("{base}/session/{id}"),
                driver: Some(driver),
                _dir: dir,
            });
        }
        Err(format!(
            "chromedriver did not start:\n{}",
            failures.join("\n")
        ))
    }

    async fn call(&self, method: &str, path: &str, body: &Value) -> Result<Value, String> {
        command_json(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    /// Loads `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.call("POST", "/url", &json!({"url": url}))
            .await
            .map(drop)
    }

    /// The page's current URL.
    pub async fn url(&self) -> Result<String, String> {
        let v = self.call("GET", "/url", &Value::Null).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// The page's HTML as it stands now.
    pub async fn source(&self) -> Result<String, String> {
        let v = self.call("GET", "/source", &Value::Null).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// The value of the cookie `name` the browser holds for the current page (HttpOnly ones
    /// included), if any.
    pub async fn cookie(&self, name: &str) -> Result<Option<String>, String> {
        match self
            .call("GET", &format!("/cookie/{name}"), &Value::Null)
            .await
        {
            Ok(v) => Ok(v["value"].as_str().map(str::to_owned)),
            Err(e) if e.contains("no such cookie") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> Result<Element<'_>, String> {
        let v = self
            .call(
                "POST",
                "/element",
                &json!({"using": "css selector", "value": css}),
            )
            .await?;
        self.element(&v)
    }

    /// Clicks the first element matching a CSS selector.
    pub async fn click(&self, css: &str) -> Result<(), String> {
        self.find(css).await?.click().await
    }

    /// Every element matching a CSS selector (none is not an error).
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>, String> {
        let v = self
            .call(
                "POST",
                "/elements",
                &json!({"using": "css selector", "value": css}),
            )
            .await?;
        v.as_array()
            .into_iter()
            .flatten()
            .map(|e| self.element(e))
            .collect()
    }

    fn element(&self, v: &Value) -> Result<Element<'_>, String> {
        let id = v[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| format!("not an element reference: {v}"))?;
        Ok(Element {
            browser: self,
            id: id.to_owned(),
        })
    }

    /// Polls for an element matching `css` until `timeout`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element<'_>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.find(css).await {
                Ok(e) => return Ok(e),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("no '{css}' within {timeout:?}: {e}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns what it
    /// returns.
    pub async fn execute(&self, script: &str, args: &[Value]) -> Result<Value, String> {
        self.call(
            "POST",
            "/execute/sync",
            &json!({"script": script, "args": args}),
        )
        .await
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>, String> {
        let v = self.call("GET", "/screenshot", &Value::Null).await?;
        let text = v
            .as_str()
            .ok_or_else(|| format!("the screenshot is not a string: {v}"))?;
        base64_decode(text)
    }

    /// Saves a PNG of the viewport to `path` (creating its directory) and returns its bytes.
    pub async fn save_screenshot(&self, path: &Path) -> Result<Vec<u8>, String> {
        let png = self.screenshot().await?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
        std::fs::write(path, &png).map_err(|e| format!("write {}: {e}", path.display()))?;
        Ok(png)
    }

    /// Ends the session and stops the driver (also done on drop).
    pub async fn quit(mut self) {
        let _ = self.call("DELETE", "", &Value::Null).await;
        if let Some(mut driver) = self.driver.take() {
            driver.stop(Duration::from_secs(3));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panicked never called `quit`: end the session with a plain blocking request
        // (chromium outlives a driver that is only stopped), then stop the driver.
        if let Some(mut driver) = self.driver.take() {
            delete_session_blocking(&self.session);
            driver.stop(Duration::from_secs(3));
        }
    }
}

/// `DELETE <session>` over a plain TCP connection, waiting up to 10 s for the answer.
fn delete_session_blocking(session: &str) {
    use std::io::{Read, Write};
    let Some(rest) = session.strip_prefix("http://") else {
        return;
    };
    let Some((authority, path)) = rest.split_once('/') else {
        return;
    };
    let Ok(mut stream) = std::net::TcpStream::connect(authority) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

impl Element<'_> {
    pub async fn click(&self) -> Result<(), String> {
        self.browser
            .call("POST", &format!("/element/{}/click", self.id), &json!({}))
            .await
            .map(drop)
    }

    /// Types `text` into the element (for a file input: the path of the file to pick).
    pub async fn send_keys(&self, text: &str) -> Result<(), String> {
        self.browser
            .call(
                "POST",
                &format!("/element/{}/value", self.id),
                &json!({"text": text}),
            )
            .await
            .map(drop)
    }

    /// Empties an input.
    pub async fn clear(&self) -> Result<(), String> {
        self.browser
            .call("POST", &format!("/element/{}/clear", self.id), &json!({}))
            .await
            .map(drop)
    }

    /// The element's rendered text.
    pub async fn text(&self) -> Result<String, String> {
        let v = self
            .browser
            .call("GET", &format!("/element/{}/text", self.id), &Value::Null)
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// An attribute's (or, failing that, a property's) value.
    pub async fn attribute(&self, name: &str) -> Result<Option<String>, String> {
        let v = self
            .browser
            .call(
                "GET",
                &format!("/element/{}/attribute/{name}", self.id),
                &Value::Null,
            )
            .await?;
        Ok(v.as_str().map(str::to_owned))
    }
}

/// Waits until the driver at `base` says it is ready.
async fn wait_ready(http: &reqwest::Client, base: &str, driver: &mut Daemon) -> Result<(), String> {
    let deadline = Instant::now() + DRIVER_STARTUP;
    loop {
        if let Some(status) = driver.exited() {
            return Err(format!("chromedriver exited at start: {status}"));
        }
        if let Ok(resp) = http.get(format!("{base}/status")).send().await
            && let Ok(v) = resp.json::<Value>().await
            && v["value"]["ready"] == true
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("chromedriver not ready within {DRIVER_STARTUP:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One WebDriver command: its `value`, or the driver's error and message.
async fn command_json(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: &Value,
) -> Result<Value, String> {
    let request = match method {
        "GET" => http.get(url),
        "DELETE" => http.delete(url),
        _ => http.post(url).json(body),
    };
    let resp = request
        .send()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = resp.status();
    let answer: Value = resp
        .json()
        .await
        .map_err(|e| format!("{method} {url}: answered {status} without JSON: {e}"))?;
    if !status.is_success() {
        let v = &answer["value"];
        return Err(format!(
            "{method} {url}: {status} {}: {}",
            v["error"].as_str().unwrap_or("?"),
            v["message"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        ));
    }
    Ok(answer["value"].clone())
}

/// Decodes standard base64 (the screenshot's encoding), ignoring whitespace.
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let symbols: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    let mut out = Vec::with_capacity(symbols.len() * 3 / 4);
    for chunk in symbols.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = value(c).ok_or_else(|| format!("not base64: byte {c:#x}"))?;
            n |= v << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        match chunk.len() {
            4 => out.extend_from_slice(&bytes),
            3 => out.extend_from_slice(&bytes[..2]),
            2 => out.push(bytes[0]),
            _ => return Err("base64 with a dangling symbol".into()),
        }
    }
    Ok(out)
}

/// The width and height of a PNG, when `bytes` is one (signature, then an IHDR chunk).
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 33 || !bytes.starts_with(SIGNATURE) || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Some((be(16), be(20)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_every_padding() {
        assert_eq!(base64_decode("TWFu").unwrap(), b"Man");
        assert_eq!(base64_decode("TWE=").unwrap(), b"Ma");
        assert_eq!(base64_decode("TQ==").unwrap(), b"M");
        assert_eq!(base64_decode("aGVs\nbG8=").unwrap(), b"hello");
        assert!(base64_decode("T!==").is_err());
    }
}
