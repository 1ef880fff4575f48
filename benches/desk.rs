//! Desk benchmark: the incoming register page with 10,000 documents (render time
//! percentiles), and sending a 10 MiB document from the desk against the CLI's `send` of
//! the same file, both against a real server in this process.
//!
//! `cargo bench --bench desk`; `CONGVAN_BENCH_DOCS=N` changes the register size and
//! `CONGVAN_BENCH_SENDS=N` the number of sends per path. Results go to
//! docs/PERFORMANCE.md by hand, with the machine they came from.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use congvan::api::ListItem;
use congvan::client::Client;
use congvan::client::send::SendRequest;
use congvan::config::{ClientProfile, ServerConfig};
use congvan::desk::register::{Filter, RegisterItem};
use congvan::desk::{self, DeskState};
use congvan::directory::{Directory, OrgId};
use congvan::pki::demo::{self, DemoOptions};
use uuid::Uuid;

const ORGS: &str = include_str!("../config/orgs.toml");

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn synthetic(i: u64) -> RegisterItem {
    let classification = if i % 10 == 0 { "mat" } else { "thuong" };
    RegisterItem {
        item: ListItem {
            seq: i,
            id: Uuid::from_u64_pair(0x0192_0000_0000_7000, i),
            sender: ["hn/cm", "hn", "hn/tt"][(i % 3) as usize].into(),
            recipients: vec!["hn/cm/chuc-son".into()],
            doc_type: "CV".into(),
            number: i.to_string(),
            notation: "CV/HU".into(),
            subject: if classification == "mat" {
                String::new()
            } else {
                format!("Về việc triển khai nhiệm vụ số {i} trong công tác văn thư, lưu trữ")
            },
            urgency: (i % 5) as u8,
            classification: classification.into(),
            state: "accepted".into(),
            accepted_at: Some(format!(
                "2026-11-{:02}T{:02}:{:02}:00Z",
                1 + (i / 1440) % 28,
                (i / 60) % 24,
                i % 60
            )),
            fetched_at: None,
            receipt_status: match i % 4 {
                0 => None,
                1 => Some("01".into()),
                2 => Some("03".into()),
                _ => Some("06".into()),
            },
            sealed_with: None,
            addressed_to: None,
            links: Vec::new(),
            recalled: false,
            incoming_number: (i % 4 >= 2).then_some(i),
        },
    }
}

/// A urlencoded-free multipart body: the fields the compose form sends, and one file.
fn multipart(boundary: &str, fields: &[(&str, &str)], file_name: &str, file: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(file.len() + 4096);
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let docs = env_usize("CONGVAN_BENCH_DOCS", 10_000);
    let sends = env_usize("CONGVAN_BENCH_SENDS", 5);
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::from_toml(ORGS).unwrap();
    let pki = demo::generate(
        &dir.path().join("pki"),
        &directory,
        ORGS,
        &DemoOptions::default(),
    )
    .unwrap();
    let mut config = ServerConfig::load(&pki.server_config()).unwrap();
    config.data_dir = dir.path().join("data");
    let server = congvan::server::Server::build(&config).unwrap();
    let listener = congvan::server::bind(([127, 0, 0, 1], 0).into()).unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(server.run(listener, std::future::pending::<()>()));

    let profile_of = |org: &str| {
        let path = pki.org_profile(&OrgId::parse(org).unwrap());
        (path.clone(), ClientProfile::load(&path).unwrap())
    };

    // 1. The incoming register page, rendered from the desk's register of `docs` rows.
    let (_, commune_profile) = profile_of("hn/cm/chuc-son");
    let commune = DeskState::new(Client::new(&commune_profile, &url).unwrap(), 1).unwrap();
    commune
        .register()
        .write()
        .unwrap()
        .merge((0..docs as u64).map(synthetic).collect());
    let headers = HeaderMap::new();
    let now = time::OffsetDateTime::now_utc();
    let cases: [(&str, Filter); 3] = [
        ("first page, no filter", Filter::default()),
        (
            "page 100",
            Filter {
                page: Some(100),
                ..Filter::default()
            },
        ),
        (
            "text + urgency filter",
            Filter {
                q: "nhiệm vụ số 9".into(),
                urgency: "3".into(),
                ..Filter::default()
            },
        ),
    ];
    println!("inbox page, {docs} documents in the register (render: filter, order, template)");
    for (name, filter) in cases {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..200 {
            let start = Instant::now();
            let page = desk::pages::render_inbox(&commune, &headers, filter.clone(), now).unwrap();
            let body = axum::body::to_bytes(page.into_body(), usize::MAX)
                .await
                .unwrap();
            times.push(start.elapsed());
            bytes = body.len();
        }
        times.sort();
        println!(
            "  {name:<24} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} KiB)",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(percentile(&times, 1.0)),
            bytes / 1024
        );
    }

    // 2. A 10 MiB document sent to one commune: the CLI, the library call the CLI makes,
    // and the desk (multipart upload over loopback, then the same call).
    let (district_path, district_profile) = profile_of("hn/cm");
    let files = tempfile::tempdir().unwrap();
    let payload: Vec<u8> = (0..10u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = files.path().join("bao-cao.bin");
    std::fs::write(&file, &payload).unwrap();

    let mut cli = Vec::new();
    for i in 0..sends {
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["send", "--profile"])
            .arg(&district_path)
            .args(["--server", &url, "--to", "hn/cm/chuc-son", "--type", "CV"])
            .args(["--number", &format!("{}", 100 + i), "--notation", "CV/HU"])
            .args(["--subject", "Báo cáo 10 MiB"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        cli.push(start.elapsed());
    }

    let district_client = Client::new(&district_profile, &url).unwrap();
    let mut library = Vec::new();
    for i in 0..sends {
        let mut request = SendRequest::new(
            "CV",
            &format!("{}", 200 + i),
            "CV/HU",
            "Báo cáo 10 MiB",
            vec![file.clone()],
        );
        request.to = vec![OrgId::parse("hn/cm/chuc-son").unwrap()];
        let start = Instant::now();
        district_client.send_document(&request).await.unwrap();
        library.push(start.elapsed());
    }

    let desk_listener = desk::bind_loopback(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let port = desk_listener.local_addr().unwrap().port();
    let district = DeskState::new(Client::new(&district_profile, &url).unwrap(), port).unwrap();
    let launch = district.launch_url().unwrap();
    let csrf = district.csrf_token().to_owned();
    tokio::spawn(desk::serve(
        desk_listener,
        district,
        std::future::pending::<()>(),
    ));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http.get(&launch).send().await.unwrap();
    let cookie = answer.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let base = format!("http://127.0.0.1:{port}");
    let mut desk_times = Vec::new();
    for i in 0..sends {
        let boundary = format!("congvan-bench-{i}");
        let number = format!("{}", 300 + i);
        let fields = [
            ("doc_type", "CV"),
            ("number", number.as_str()),
            ("notation", "CV/HU"),
            ("subject", "Báo cáo 10 MiB"),
            ("to", "hn/cm/chuc-son"),
        ];
        let start = Instant::now();
        // Building the body is the browser's work, timed too to be fair to the CLI.
        let body = multipart(&boundary, &fields, "bao-cao.bin", &payload);
        let answer = http
            .post(format!("{base}/compose"))
            .header("cookie", &cookie)
            .header("origin", &base)
            .header("x-csrf-token", &csrf)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 303, "{:?}", answer.text().await);
        desk_times.push(start.elapsed());
    }
    for times in [&mut cli, &mut library, &mut desk_times] {
        times.sort();
    }
    let median = |t: &[Duration]| ms(percentile(t, 0.5));
    println!("send of a 10 MiB file to one commune, {sends} sends each (median, min, max):");
    for (name, times) in [
        ("congvan send (CLI process)", &cli),
        ("Client::send_document", &library),
        ("desk: upload + send", &desk_times),
    ] {
        println!(
            "  {name:<28} {:>8.1} ms  {:>8.1} ms  {:>8.1} ms",
            median(times),
            ms(times[0]),
            ms(times[times.len() - 1])
        );
    }
    println!(
        "  desk / CLI = {:.2}×, desk / library call = {:.2}×",
        median(&desk_times) / median(&cli),
        median(&desk_times) / median(&library)
    );
}
