//! The dashboard in a real headless Chromium (Debian's `chromium` and `chromedriver`), against a
//! real host with API tokens on: without a token it shows the login form and no job data (and
//! the API refuses the browser); after logging in the queue panel and the jobs show, the presets
//! list shows versions and yanks, a job submitted through the form generated from the preset's
//! schema (its input picked as a file and uploaded by the page) shows up and reaches COMPLETED on
//! screen with a player for its output. The session cookie works for reads and same-origin
//! changes only. A screenshot is saved under the target directory (`dashboard/dashboard.png`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mediahost_e2e::browser::{Browser, png_size};
use mediahost_e2e::client::json_body;
use mediahost_e2e::deployment::ADMIN_TOKEN;
use mediahost_e2e::host::{Host, StorageKind, presets_dir};
use mediahost_e2e::{Client, media, process, target_dir};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "dashboard-team-token";
const WIDTH: u32 = 1400;
const HEIGHT: u32 = 1000;
/// How long a job may take to show COMPLETED on screen.
const ON_SCREEN: Duration = Duration::from_secs(120);

/// A presets directory with both released versions of audio-convert only, so the host starts
/// quickly.
fn audio_convert_only(dir: &Path) -> PathBuf {
    let presets = dir.join("presets");
    std::fs::create_dir_all(&presets).unwrap();
    for file in ["audio-convert-1.0.0.wasm", "audio-convert-1.1.0.wasm"] {
        std::fs::copy(presets_dir().join(file), presets.join(file))
            .unwrap_or_else(|e| panic!("copy the released {file}: {e}"));
    }
    presets
}

/// Uploads a file with the bearer token; its URI.
async fn upload(client: &Client, path: &Path) -> Value {
    let http = client.http();
    let name = path.file_name().unwrap().to_str().unwrap();
    let grant = json_body(
        http.post(client.url("/v1/uploads"))
            .bearer_auth(TOKEN)
            .json(&json!({"filename": name}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
        "POST /v1/uploads",
    )
    .await;
    let put = http
        .put(grant["upload_url"].as_str().unwrap())
        .body(std::fs::read(path).unwrap())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "PUT {name}: {}", put.status());
    grant["uri"].clone()
}

/// Submits a job with the bearer token; its id.
async fn submit(client: &Client, body: Value) -> String {
    let job = json_body(
        client
            .http()
            .post(client.url("/v1/jobs"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap(),
        StatusCode::ACCEPTED,
        "POST /v1/jobs",
    )
    .await;
    job["id"].as_str().unwrap().to_owned()
}

/// The page's visible text.
async fn page_text(browser: &Browser) -> String {
    browser
        .execute("return document.body.innerText;", &[])
        .await
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|e| format!("(no text: {e})"))
}

/// Polls the page until `script` returns something truthy (that value), or panics after
/// `timeout` with what the page shows.
async fn wait_until(browser: &Browser, what: &str, script: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(v) = browser.execute(script, &[]).await
            && !(v.is_null() || v == false || v == "")
        {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "{what}: not within {timeout:?}; the page shows:\n{}",
                page_text(browser).await
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The status a same-origin `fetch` from the page gets.
async fn fetch_status(browser: &Browser, path: &str) -> u64 {
    browser
        .execute(
            "return fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.status);",
            &[json!(path)],
        )
        .await
        .unwrap_or_else(|e| panic!("fetch {path} from the page: {e}"))
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_logs_in_shows_the_queue_and_runs_a_job_from_its_form() {
    let started = Instant::now();
    let dir = process::fixture_dir("dashboard");
    let presets = audio_convert_only(dir.path());
    let host = Host::start_with_args(
        StorageKind::Local,
        &presets,
        &["--api-tokens", TOKEN, "--admin-token", ADMIN_TOKEN],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let client = host.client();
    let http = client.http();
    let base = host.base_url().to_owned();
    let tone = media::sine(&dir.path().join("tone.wav"), 2.0);

    // A job that exists before anyone logs in (the login page must not show it), and one that
    // fails.
    let seed_input = upload(&client, &tone).await;
    let seed_id = submit(
        &client,
        json!({"preset": "audio-convert", "inputs": {"main": seed_input}, "params": {"codec": "wav"}}),
    )
    .await;
    let notes = upload(&client, &media::not_media(&dir.path().join("notes.wav"))).await;
    let failed_id = submit(
        &client,
        json!({"preset": "audio-convert", "inputs": {"main": notes}}),
    )
    .await;
    // A yanked version, for the presets view to show.
    let yank = http
        .delete(client.url("/v1/presets/audio-convert/1.0.0"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(yank.status(), StatusCode::OK, "yank audio-convert 1.0.0");

    // The page itself: HTML under a strict policy; / leads to it.
    let page = http.get(format!("{base}/dashboard")).send().await.unwrap();
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "the dashboard is HTML"
    );
    for directive in [
        "default-src 'self'",
        "script-src 'self';",
        "object-src 'none'",
    ] {
        assert!(csp.contains(directive), "CSP lacks {directive}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let script = http
        .get(format!("{base}/dashboard/app.js"))
        .send()
        .await
        .unwrap();
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"),
        "the script's content type"
    );
    let queue_without = http.get(format!("{base}/v1/queue")).send().await.unwrap();
    assert_eq!(queue_without.status(), 401, "GET /v1/queue needs a token");

    let browser = Browser::start(WIDTH, HEIGHT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Without a token: the login form, no job data, and the API refuses the page.
    browser.goto(&base).await.unwrap();
    browser
        .wait_for("form#login", Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("the login form: {e}"));
    assert!(
        browser.url().await.unwrap().ends_with("/dashboard"),
        "/ leads to the dashboard"
    );
    let source = browser.source().await.unwrap();
    assert!(
        !source.contains(&seed_id) && !source.contains("audio-convert"),
        "the login page shows job data:\n{source}"
    );
    assert!(browser.find_all("#queue").await.unwrap().is_empty());
    assert_eq!(fetch_status(&browser, "/v1/jobs").await, 401);
    assert_eq!(fetch_status(&browser, "/v1/queue").await, 401);

    // A wrong token: the form again, saying so.
    let field = browser.find("#token").await.unwrap();
    field.send_keys("not-a-token").await.unwrap();
    browser.click("#login-submit").await.unwrap();
    let refusal = match browser
        .wait_for("#login-error", Duration::from_secs(10))
        .await
    {
        Ok(e) => e,
        Err(e) => panic!(
            "the refusal: {e}\n{}: {}",
            browser.url().await.unwrap_or_default(),
            browser.source().await.unwrap_or_default()
        ),
    };
    assert!(refusal.text().await.unwrap().contains("not one of"));
    assert!(browser.cookie("mediahost_session").await.unwrap().is_none());

    // The right token: the dashboard, with the queue panel and the seed job.
    let field = browser.find("#token").await.unwrap();
    field.send_keys(TOKEN).await.unwrap();
    browser.click("#login-submit").await.unwrap();
    wait_until(
        &browser,
        "the queue panel",
        "const q = document.querySelector('#queue[data-loaded=true]');
         return q && /^\\d+$/.test(document.querySelector('#queue-normal').textContent);",
        Duration::from_secs(15),
    )
    .await;
    wait_until(
        &browser,
        "the seed job in the recent jobs",
        &format!("return !!document.querySelector('#recent-jobs tr[data-job-id=\"{seed_id}\"]');"),
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(fetch_status(&browser, "/v1/jobs").await, 200);
    let failure = wait_until(
        &browser,
        "the failed job with its code",
        &format!(
            "const r = document.querySelector('#failed-jobs tr[data-job-id=\"{failed_id}\"]'); \
             return r && r.textContent;"
        ),
        Duration::from_secs(30),
    )
    .await;
    assert!(
        failure.as_str().unwrap().contains("INPUT_UNREADABLE"),
        "the failed job's row: {failure}"
    );

    // The session cookie: HttpOnly (not in document.cookie), no token in it; reads from anywhere,
    // changes only from the dashboard's own origin.
    let cookie = browser
        .cookie("mediahost_session")
        .await
        .unwrap()
        .expect("a session cookie after logging in");
    assert!(!cookie.contains(TOKEN));
    let visible = browser
        .execute("return document.cookie;", &[])
        .await
        .unwrap();
    assert!(!visible.as_str().unwrap_or("").contains("mediahost_session"));
    let with_cookie =
        |req: reqwest::RequestBuilder| req.header("cookie", format!("mediahost_session={cookie}"));
    let read = with_cookie(http.get(client.url("/v1/jobs")))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200, "a read with the session cookie");
    for (why, origin, site) in [
        ("another site's Origin", Some("http://evil.example"), None),
        ("a cross-site fetch", None, Some("cross-site")),
        ("neither Origin nor Sec-Fetch-Site", None, None),
    ] {
        let mut req = with_cookie(http.post(client.url("/v1/uploads"))).json(&json!({}));
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        if let Some(site) = site {
            req = req.header("sec-fetch-site", site);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "a cookie-authenticated POST with {why}");
    }
    let same = with_cookie(http.post(client.url("/v1/uploads")))
        .header("origin", base.as_str())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        same.status(),
        201,
        "a same-origin cookie-authenticated POST"
    );

    // Presets: versions, the yank, and a form generated from the live version's schema.
    browser.click("#nav-presets").await.unwrap();
    let yanked = browser
        .wait_for(
            "[data-preset=\"audio-convert\"] tr.yanked[data-version=\"1.0.0\"]",
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("the yanked version: {e}"));
    assert!(yanked.text().await.unwrap().contains("yanked"));
    browser
        .save_screenshot(&target_dir().join("dashboard").join("dashboard-presets.png"))
        .await
        .unwrap();
    browser
        .click("[data-preset=\"audio-convert\"] tr[data-version=\"1.1.0\"] a.submit-link")
        .await
        .unwrap();
    browser
        .wait_for("#submit-form", Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("the submit form: {e}"));
    // The schema's shapes: a choice is a select of its options, an integer a number field with
    // its range.
    let codec_options = browser
        .execute(
            "return [...document.querySelectorAll('#param-codec option')].map(o => o.value);",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        codec_options,
        json!(["", "wav", "flac", "mp3", "aac", "opus"])
    );
    let bitrate = browser.find("#param-bitrate_kbps").await.unwrap();
    assert_eq!(
        bitrate.attribute("type").await.unwrap().as_deref(),
        Some("number")
    );
    assert_eq!(
        bitrate.attribute("min").await.unwrap().as_deref(),
        Some("8")
    );
    assert_eq!(
        bitrate.attribute("max").await.unwrap().as_deref(),
        Some("512")
    );

    browser
        .save_screenshot(&target_dir().join("dashboard").join("dashboard-submit.png"))
        .await
        .unwrap();

    // The input picked as a file: the page uploads it and fills in its URI.
    browser
        .find("#file-main")
        .await
        .unwrap()
        .send_keys(tone.to_str().unwrap())
        .await
        .unwrap();
    let uri = wait_until(
        &browser,
        "the uploaded input's URI",
        "const v = document.querySelector('#input-main').value; \
         return v.startsWith('local://uploads/') ? v : null;",
        Duration::from_secs(20),
    )
    .await;
    browser
        .click("#param-codec option[value=\"opus\"]")
        .await
        .unwrap();
    bitrate.send_keys("96").await.unwrap();
    browser
        .click("#priority option[value=\"high\"]")
        .await
        .unwrap();
    browser.click("#submit-job").await.unwrap();
    let id = wait_until(
        &browser,
        "the submitted job's page",
        "const j = document.querySelector('#job[data-job-id]'); return j && j.dataset.jobId;",
        Duration::from_secs(15),
    )
    .await;
    let id = id.as_str().unwrap().to_owned();
    assert_ne!(id, seed_id);

    // COMPLETED on screen, followed live, with a player for the output.
    let shown = wait_until(
        &browser,
        "the job reaching an end on screen",
        "const s = document.querySelector('#job-state'); \
         return s && ['COMPLETED','FAILED','DEAD','CANCELLED'].includes(s.dataset.state) \
           && document.querySelector('#job-history') ? s.textContent : null;",
        ON_SCREEN,
    )
    .await;
    assert_eq!(shown, "COMPLETED", "{}", page_text(&browser).await);
    let ready = wait_until(
        &browser,
        "the output's audio player loading the file",
        "const a = document.querySelector('#job-outputs audio'); \
         return a && a.readyState >= 1 ? a.duration : null;",
        Duration::from_secs(20),
    )
    .await;
    let duration = ready.as_f64().unwrap_or(0.0);
    assert!(
        (duration - 2.0).abs() < 0.2,
        "the player's duration is {duration} s, the input's 2 s"
    );

    // What the form sent is what the schema asked for: typed params, the pinned version.
    let job = json_body(
        http.get(client.url(&format!("/v1/jobs/{id}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
        "GET the dashboard's job",
    )
    .await;
    assert_eq!(job["state"], "COMPLETED");
    assert_eq!(job["preset"]["version"], "1.1.0");
    assert_eq!(job["params"]["codec"], "opus");
    assert_eq!(job["params"]["bitrate_kbps"], 96);
    assert_eq!(job["priority"], "high");
    assert_eq!(job["inputs"]["main"], uri);

    // The job in the list, COMPLETED there too.
    browser.click("#nav-jobs").await.unwrap();
    wait_until(
        &browser,
        "the job COMPLETED in the recent jobs",
        &format!(
            "return !!document.querySelector('#recent-jobs tr[data-job-id=\"{id}\"][data-state=COMPLETED]');"
        ),
        Duration::from_secs(15),
    )
    .await;

    // A long job, watched live in the running panel: each output's phase and progress come
    // only from its event stream.
    let long = upload(
        &client,
        &media::pink_noise(&dir.path().join("long.wav"), 300, 0.3),
    )
    .await;
    let running_id = submit(
        &client,
        json!({"preset": "audio-convert", "inputs": {"main": long},
               "params": {"codec": "mp3", "bitrate_kbps": 320}, "cache": false}),
    )
    .await;
    let live = wait_until(
        &browser,
        "the long job's output progress, live in the running panel",
        &format!(
            "const p = document.querySelector('#running-list .running-job[data-job-id=\"{running_id}\"]              li[data-output=main] progress'); return p && p.value > 0 ? p.value : null;"
        ),
        Duration::from_secs(30),
    )
    .await;
    assert!(live.as_f64().unwrap() < 1.0, "progress {live}");
    let shot_running = target_dir().join("dashboard").join("dashboard-running.png");
    browser.save_screenshot(&shot_running).await.unwrap();
    let cancel = http
        .post(client.url(&format!("/v1/jobs/{running_id}/cancel")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(cancel.status().is_success(), "cancel: {}", cancel.status());
    wait_until(
        &browser,
        "the cancelled job leaving the running panel",
        &format!("return !document.querySelector('#running-list [data-job-id=\"{running_id}\"]');"),
        Duration::from_secs(15),
    )
    .await;

    // The screenshot: the job's page, with its player.
    browser
        .goto(&format!("{base}/dashboard#/jobs/{id}"))
        .await
        .unwrap();
    wait_until(
        &browser,
        "the job's page again",
        "const a = document.querySelector('#job-outputs audio'); return a && a.readyState >= 1;",
        Duration::from_secs(15),
    )
    .await;
    let shot = target_dir().join("dashboard").join("dashboard.png");
    let png = browser.save_screenshot(&shot).await.unwrap();
    let size = png_size(&png).unwrap_or_else(|| panic!("{} is not a PNG", shot.display()));
    assert!(
        size.0 > 0 && size.1 > 0 && png.len() > 10_000,
        "{} is {} bytes of {size:?}",
        shot.display(),
        png.len()
    );
    let overview = target_dir().join("dashboard").join("dashboard-jobs.png");
    browser.goto(&format!("{base}/dashboard#/")).await.unwrap();
    wait_until(
        &browser,
        "the jobs view",
        "return !!document.querySelector('#recent-jobs');",
        Duration::from_secs(15),
    )
    .await;
    browser.save_screenshot(&overview).await.unwrap();
    eprintln!(
        "[e2e] dashboard screenshots: {} ({}x{}, {} bytes), {} and {}; the test took {:.1} s",
        shot.display(),
        size.0,
        size.1,
        png.len(),
        overview.display(),
        shot_running.display(),
        started.elapsed().as_secs_f64()
    );

    // Logging out: the login form again.
    browser.click(".logout button").await.unwrap();
    browser
        .wait_for("form#login", Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("the login form after logging out: {e}"));
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_host_serves_the_dashboard_without_a_login() {
    let dir = process::fixture_dir("dashboard-open");
    let presets = audio_convert_only(dir.path());
    let host =
        Host::start_with_args(StorageKind::Local, &presets, &[]).unwrap_or_else(|e| panic!("{e}"));
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = host.base_url();
    let root = http.get(format!("{base}/")).send().await.unwrap();
    assert!(
        root.status().is_redirection(),
        "GET / answered {}",
        root.status()
    );
    assert_eq!(root.headers()["location"], "/dashboard");
    let page = http.get(format!("{base}/dashboard")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"queue\""), "the dashboard itself");
    assert!(
        !html.contains("id=\"login\"") && !html.contains("/dashboard/logout"),
        "no login or logout on an open host"
    );
    let queue = json_body(
        http.get(format!("{base}/v1/queue")).send().await.unwrap(),
        StatusCode::OK,
        "GET /v1/queue",
    )
    .await;
    for priority in ["high", "normal", "low"] {
        assert!(queue["pending"][priority].is_u64(), "{queue}");
    }
    assert!(
        queue["processing"].is_u64() && queue["delayed"].is_u64(),
        "{queue}"
    );
}
