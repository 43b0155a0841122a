//! The harness checked on its own, without the host: if these fail, the e2e tests' failures say
//! nothing about mediahost.

use std::process::Command;
use std::time::Duration;

use mediahost_e2e::media::{self, Fixtures};
use mediahost_e2e::{Redis, S3Server};

#[test]
fn redis_answers_ping_and_stops_on_drop() {
    let redis = Redis::start();
    let port = redis.port();
    assert_eq!(redis.ping().expect("PING redis"), "+PONG");
    drop(redis);
    let after = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    );
    assert!(
        after.is_err(),
        "redis-server still listens on {port} after drop"
    );
}

#[tokio::test]
async fn s3s_fs_serves_presigned_put_and_get_and_rejects_bad_signatures() {
    let s3 = S3Server::start();
    s3.create_bucket("harness");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let body = format!("hello from the harness {}", uuid::Uuid::new_v4());

    let put = s3.presign("PUT", "harness", "dir/with space/obj.txt", 300);
    let resp = http.put(&put).body(body.clone()).send().await.unwrap();
    assert!(
        resp.status().is_success(),
        "presigned PUT answered {}: {}\ns3s-fs log:\n{}",
        resp.status(),
        resp.text().await.unwrap_or_default(),
        s3.log_tail(20)
    );

    let get = s3.presign("GET", "harness", "dir/with space/obj.txt", 300);
    let resp = http.get(&get).send().await.unwrap();
    assert_eq!(resp.status(), 200, "presigned GET");
    assert_eq!(resp.text().await.unwrap(), body);
    // s3_e2e relies on this layout to check that outputs really are in the bucket.
    let on_disk = std::fs::read_to_string(s3.root().join("harness/dir/with space/obj.txt"))
        .expect("s3s-fs keeps objects as files under <root>/<bucket>/<key>");
    assert_eq!(on_disk, body);

    // A URL signed for GET must not work for PUT, and a changed signature must not work at all;
    // otherwise the S3 tests could pass against a server that checks nothing.
    let resp = http.put(&get).body("overwrite").send().await.unwrap();
    assert_eq!(resp.status(), 403, "PUT with a GET-signed URL");
    // Change the last hex digit of the signature (to another digit: one in sixteen already ends
    // in 0).
    let flipped = if get.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{flipped}", &get[..get.len() - 1]);
    let resp = http.get(&tampered).send().await.unwrap();
    assert_eq!(resp.status(), 403, "GET with a tampered signature");
    let unsigned = format!("{}/harness/dir/with%20space/obj.txt", s3.endpoint());
    let resp = http.get(&unsigned).send().await.unwrap();
    assert_eq!(resp.status(), 403, "GET without a signature");
}

#[test]
fn fixtures_are_what_they_claim() {
    let f = Fixtures::get();

    let speech = media::loudness(&f.speech);
    let quiet = media::loudness(&f.speech_quiet);
    let hot = media::loudness(&f.speech_hot);
    eprintln!("speech {speech:?}, quiet {quiet:?}, hot {hot:?}");
    assert!(
        (-26.0..=-16.0).contains(&speech.integrated),
        "typical speech: {speech:?}"
    );
    assert!(
        (quiet.integrated + 40.0).abs() <= 0.5,
        "quiet speech: {quiet:?}"
    );
    assert!((hot.integrated + 8.0).abs() <= 1.0, "hot speech: {hot:?}");
    assert!(hot.true_peak > 0.0, "hot speech is clipped: {hot:?}");
    let speech_probe = media::probe(&f.speech);
    let duration: f64 = speech_probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (10.0..=16.0).contains(&duration),
        "speech lasts {duration}s"
    );

    for (path, channels, rate) in [
        (&f.music, 2, 44_100),
        (&f.tone_mono, 1, 48_000),
        (&f.tone_stereo, 2, 48_000),
        (&f.tone_51, 6, 48_000),
    ] {
        let probe = media::probe(path);
        let audio = media::audio_stream(&probe);
        assert_eq!(audio["channels"], channels, "{}: {audio:#}", path.display());
        assert_eq!(media::sample_rate(audio), rate, "{}", path.display());
        assert_eq!(audio["codec_name"], "pcm_s16le", "{}", path.display());
    }
    let five_one = media::probe(&f.tone_51);
    assert!(
        media::audio_stream(&five_one)["channel_layout"]
            .as_str()
            .is_some_and(|l| l.starts_with("5.1")),
        "5.1 layout: {five_one:#}"
    );

    let video = media::probe(&f.video_only);
    let streams = video["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "video-only file: {video:#}");
    assert_eq!(streams[0]["codec_type"], "video");

    let not_media = Command::new("ffprobe")
        .args(["-v", "error"])
        .arg(&f.not_media)
        .output()
        .unwrap();
    assert!(
        !not_media.status.success(),
        "ffprobe must not read the text file"
    );
}
