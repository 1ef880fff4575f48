//! Transfers a user can watch and resume (issue 12, item 8), against the real server and
//! the real binary: no progress output without a terminal, Ctrl-C during `send` says what
//! is left and how to finish, `send --resume` finishes it (and refuses changed files),
//! `sent` lists what still awaits its payload, and a classified fetch runs in bounded
//! memory.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::support::TestServer;

fn congvan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_congvan"))
}

fn profile(server: &TestServer, org: &str) -> String {
    server
        .pki
        .org_profile(&org.parse().unwrap())
        .display()
        .to_string()
}

/// A server whose `[seal]` lets the bundled OpenPGP cipher seal "Mật" documents, so the
/// real binary (which knows only the bundled cipher) can send and fetch them.
async fn server_allowing_mat() -> TestServer {
    TestServer::start_with(|c| c.seal.allow_uncertified_mat = true).await
}

/// A file of `size` bytes that does not compress (so the sealed payload is as large).
fn noise_file(path: &Path, size: usize) {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for b in block.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        let n = left.min(block.len());
        file.write_all(&block[..n]).unwrap();
        left -= n;
    }
    file.flush().unwrap();
}

fn send_args<'a>(profile: &'a str, to: &'a str, number: &'a str) -> Vec<&'a str> {
    vec![
        "send",
        "--profile",
        profile,
        "--to",
        to,
        "--type",
        "CV",
        "--number",
        number,
        "--notation",
        "CV/HU",
        "--subject",
        "Chuyển tệp lớn (thử nghiệm)",
    ]
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The peak resident set of a finished command, in KiB, as `/usr/bin/time -v` reports it
/// (the kernel's own accounting of the child: exact, not sampled).
fn max_rss_kib(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maximum resident set size in:\n{stderr}"))
}

/// Progress bars draw with carriage returns and escape sequences, and name the transfer.
fn assert_no_progress(what: &str, out: &Output) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for mark in ["\r", "\x1b[", "sending ", "fetching ", "MiB/s", "[=", "=>"] {
        assert!(
            !all.contains(mark),
            "{what} printed progress ({mark:?}) without a terminal:\n{all}"
        );
    }
}

/// Runs the real binary to completion (off the runtime's worker, so the in-process
/// server keeps serving).
fn run(args: &[&str]) -> Output {
    tokio::task::block_in_place(|| congvan().args(args).stdin(Stdio::null()).output().unwrap())
}

/// Sends `file` from hn/cm to hn/cm/chuc-son with the real binary; returns the output.
fn cli_send(server_url: &str, sender: &str, file: &Path, extra: &[&str]) -> Output {
    let number = crate::support::next_number();
    let mut args = send_args(sender, "hn/cm/chuc-son", &number);
    args.extend(["--server", server_url]);
    args.extend(extra);
    let file_arg = file.display().to_string();
    args.push(&file_arg);
    run(&args)
}

/// Fetches document `id` as hn/cm/chuc-son with the real binary under `time -v`.
fn cli_fetch_timed(server: &TestServer, id: &str, out_dir: &Path) -> Output {
    let recipient = profile(server, "hn/cm/chuc-son");
    let url = server.url();
    let out_arg = out_dir.display().to_string();
    tokio::task::block_in_place(|| {
        Command::new("/usr/bin/time")
            .arg("-v")
            .arg(env!("CARGO_BIN_EXE_congvan"))
            .args(["fetch", "--profile", &recipient, "--server", &url, id])
            .args(["--out", &out_arg])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn no_progress_output_when_not_a_terminal() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    // Above the size from which a terminal gets a bar.
    let file = work.path().join("phu-luc.bin");
    noise_file(&file, 6 << 20);
    let sent = cli_send(&server.url(), &profile(&server, "hn/cm"), &file, &[]);
    assert!(sent.status.success(), "{}", text(&sent));
    assert_no_progress("send", &sent);
    let id = String::from_utf8_lossy(&sent.stdout).trim().to_owned();
    let out_dir = work.path().join("out");
    let recipient = profile(&server, "hn/cm/chuc-son");
    let url = server.url();
    let out_arg = out_dir.display().to_string();
    let fetched = run(&[
        "fetch",
        "--profile",
        &recipient,
        "--server",
        &url,
        &id,
        "--out",
        &out_arg,
    ]);
    assert!(fetched.status.success(), "{}", text(&fetched));
    assert_no_progress("fetch", &fetched);
    assert_eq!(
        std::fs::read(out_dir.join("phu-luc.bin")).unwrap(),
        std::fs::read(&file).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_classified_fetch_runs_in_bounded_memory() {
    if !crate::support::require("/usr/bin/time") {
        return;
    }
    let size: usize = std::env::var("CONGVAN_TRANSFER_TEST_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
        << 20;
    let server = server_allowing_mat().await;
    let work = tempfile::tempdir().unwrap();
    let sender = profile(&server, "hn/cm");
    // The same fetch of a small and of a large classified document: what the process
    // needs whatever the size (TLS, the OpenPGP library, the runtime) is the small one's
    // peak; holding the payload would add its size on top.
    let mut peaks = Vec::new();
    for (name, bytes) in [("nho.bin", 1usize << 20), ("ban-do.bin", size)] {
        let file = work.path().join(name);
        noise_file(&file, bytes);
        let sent = cli_send(&server.url(), &sender, &file, &["--classification", "mat"]);
        assert!(sent.status.success(), "{}", text(&sent));
        let id = String::from_utf8_lossy(&sent.stdout).trim().to_owned();
        let out_dir = work.path().join(format!("out-{name}"));
        let fetched = cli_fetch_timed(&server, &id, &out_dir);
        assert!(fetched.status.success(), "{}", text(&fetched));
        let written = out_dir.join(name);
        assert_eq!(std::fs::metadata(&written).unwrap().len(), bytes as u64);
        assert_eq!(
            congvan::document::sha256_hex(&std::fs::read(&written).unwrap()),
            congvan::document::sha256_hex(&std::fs::read(&file).unwrap())
        );
        let stderr = String::from_utf8_lossy(&fetched.stderr);
        assert!(
            String::from_utf8_lossy(&fetched.stdout).contains("(decrypted"),
            "{}",
            text(&fetched)
        );
        peaks.push(max_rss_kib(&stderr) * 1024);
    }
    let (small, large) = (peaks[0], peaks[1]);
    eprintln!(
        "classified fetch peak RSS: {} MiB for 1 MiB, {} MiB for {} MiB",
        small >> 20,
        large >> 20,
        size >> 20
    );
    assert!(
        large < small + size as u64 / 4,
        "the fetch of {} MiB peaked at {} MiB, {} MiB above the fetch of 1 MiB: the payload \
         is held in memory",
        size >> 20,
        large >> 20,
        (large.saturating_sub(small)) >> 20
    );
}

/// Which way a relay slows the traffic.
#[derive(Clone, Copy)]
enum Slow {
    /// What the client sends (an upload).
    Up,
    /// What the server sends (a download).
    Down,
}

/// A TCP relay to `target` that forwards one direction at `bytes_per_second` and the
/// other at full speed; returns its URL and the bytes forwarded the slow way so far.
async fn slow_relay(
    target: SocketAddr,
    way: Slow,
    bytes_per_second: u64,
) -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let forwarded = Arc::new(AtomicU64::new(0));
    let counter = forwarded.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let (mut fast_read, mut fast_write, mut slow_read, mut slow_write) = match way {
                    Slow::Up => (server_read, client_write, client_read, server_write),
                    Slow::Down => (client_read, server_write, server_read, client_write),
                };
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut fast_read, &mut fast_write).await;
                    let _ = fast_write.shutdown().await;
                });
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match slow_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if slow_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_micros(
                        n as u64 * 1_000_000 / bytes_per_second,
                    ))
                    .await;
                }
                let _ = slow_write.shutdown().await;
            });
        }
    });
    (format!("https://localhost:{port}"), forwarded)
}

/// The server's state of document `id`, as its sender sees it (None while unknown).
async fn state_of(server: &TestServer, id: &Uuid) -> Option<String> {
    let view: Result<congvan::api::DocumentView, _> = server
        .client("hn/cm")
        .get_json(&format!("/v1/documents/{id}"))
        .await;
    view.ok().map(|v| v.state)
}

/// Starts `congvan send --id ID` of `file` through a slow uplink and presses Ctrl-C
/// (SIGINT) once the server holds the signed manifest and a few MiB of the payload have
/// gone out; returns the finished process's output.
async fn send_and_interrupt(server: &TestServer, file: &Path, id: &Uuid, extra: &[&str]) -> Output {
    let (url, forwarded) = slow_relay(server.addr, Slow::Up, 2 << 20).await;
    let sender = profile(server, "hn/cm");
    let number = crate::support::next_number();
    let id_arg = id.to_string();
    let mut args = send_args(&sender, "hn/cm/chuc-son", &number);
    args.extend(["--server", &url, "--id", &id_arg]);
    args.extend(extra);
    let file_arg = file.display().to_string();
    args.push(&file_arg);
    let child = congvan()
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the upload never started");
        if state_of(server, id).await.as_deref() == Some("awaiting_payload")
            && forwarded.load(Ordering::Relaxed) > 3 << 20
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id().to_string();
    let killed =
        tokio::task::block_in_place(|| Command::new("kill").args(["-INT", &pid]).status().unwrap());
    assert!(killed.success());
    tokio::task::block_in_place(|| child.wait_with_output().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_send_says_what_is_left_and_resume_finishes_it() {
    let server = server_allowing_mat().await;
    let work = tempfile::tempdir().unwrap();
    let sender = profile(&server, "hn/cm");
    let state_dir = server.org_profile("hn/cm").state_dir;
    for classification in ["thuong", "mat"] {
        let file = work.path().join(format!("tai-lieu-{classification}.bin"));
        noise_file(&file, 24 << 20);
        let id = Uuid::now_v7();
        let out =
            send_and_interrupt(&server, &file, &id, &["--classification", classification]).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            stderr.contains(&format!("accepted the signed manifest of document {id}")),
            "{stderr}"
        );
        assert!(stderr.contains(" payload bytes were sent"), "{stderr}");
        let resume = format!("congvan send --resume {id} --profile {sender}");
        assert!(stderr.contains(&resume), "{stderr}");
        assert_eq!(
            state_of(&server, &id).await.as_deref(),
            Some("awaiting_payload")
        );

        // What resuming needs is kept, readable by its owner only.
        let kept = state_dir.join("pending").join(format!("{id}.json"));
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
            0o600
        );

        // `sent` lists the orphan with its state and the command that finishes it.
        let url = server.url();
        let listed = run(&["sent", "--profile", &sender, "--server", &url]);
        assert!(listed.status.success(), "{}", text(&listed));
        let listing = String::from_utf8_lossy(&listed.stdout);
        let line = listing
            .lines()
            .find(|l| l.starts_with(&id.to_string()))
            .unwrap_or_else(|| panic!("{id} is not listed:\n{listing}"));
        assert!(line.contains("awaiting_payload"), "{listing}");
        assert!(
            listing.contains(&format!("congvan send --resume {id}")),
            "{listing}"
        );

        // Resuming sends the kept submission (no new signature, so no 409).
        let id_arg = id.to_string();
        let resumed = run(&[
            "send",
            "--resume",
            &id_arg,
            "--profile",
            &sender,
            "--server",
            &url,
        ]);
        assert!(resumed.status.success(), "{}", text(&resumed));
        assert_eq!(String::from_utf8_lossy(&resumed.stdout).trim(), id_arg);
        assert_eq!(state_of(&server, &id).await.as_deref(), Some("accepted"));
        assert!(!kept.exists(), "the kept submission outlived the upload");
        assert!(
            !state_dir
                .join("pending")
                .join(format!("{id}.sealed"))
                .exists(),
            "the kept sealed payload outlived the upload"
        );

        // The recipient verifies it and gets the same bytes.
        let out_dir = work.path().join(format!("out-{classification}"));
        let fetched = server
            .client("hn/cm/chuc-son")
            .fetch_document(&id, &out_dir)
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(&fetched.files[0]).unwrap(),
            std::fs::read(&file).unwrap()
        );

        // Resuming what is complete says so and succeeds.
        let again = run(&[
            "send",
            "--resume",
            &id_arg,
            "--profile",
            &sender,
            "--server",
            &url,
        ]);
        assert!(again.status.success(), "{}", text(&again));
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("already had this document"),
            "{}",
            text(&again)
        );
        let listed = run(&["sent", "--profile", &sender, "--server", &url]);
        assert!(
            !String::from_utf8_lossy(&listed.stdout).contains("congvan send --resume"),
            "{}",
            text(&listed)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_refuses_files_changed_since_signing() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let sender = profile(&server, "hn/cm");
    let file = work.path().join("bao-cao.bin");
    noise_file(&file, 16 << 20);
    let id = Uuid::now_v7();
    let out = send_and_interrupt(&server, &file, &id, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let kept = server
        .org_profile("hn/cm")
        .state_dir
        .join("pending")
        .join(format!("{id}.json"));
    let before = std::fs::read(&kept).unwrap();

    // One byte changed in the file after it was signed.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let url = server.url();
    let id_arg = id.to_string();
    let resumed = run(&[
        "send",
        "--resume",
        &id_arg,
        "--profile",
        &sender,
        "--server",
        &url,
    ]);
    assert_eq!(resumed.status.code(), Some(1), "{}", text(&resumed));
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        stderr.contains("changed since the document was signed (its SHA-256 differs"),
        "{stderr}"
    );
    // The refusal changed nothing: the server still waits, the kept submission is intact.
    assert_eq!(
        state_of(&server, &id).await.as_deref(),
        Some("awaiting_payload")
    );
    assert_eq!(std::fs::read(&kept).unwrap(), before);

    // Retrying the old way (a new signature under the same id) is pointed at the resume
    // instead of signing anew and losing the kept submission.
    let retried = cli_send(&url, &sender, &file, &["--id", &id_arg]);
    assert_eq!(retried.status.code(), Some(1), "{}", text(&retried));
    assert!(
        String::from_utf8_lossy(&retried.stderr)
            .contains(&format!("congvan send --resume {id} --profile {sender}")),
        "{}",
        text(&retried)
    );
    assert_eq!(std::fs::read(&kept).unwrap(), before);

    // Restored, it resumes.
    bytes[1000] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let resumed = run(&[
        "send",
        "--resume",
        &id_arg,
        "--profile",
        &sender,
        "--server",
        &url,
    ]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert_eq!(state_of(&server, &id).await.as_deref(), Some("accepted"));
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_without_a_kept_upload_says_what_to_do() {
    let server = TestServer::start().await;
    let sender = profile(&server, "hn/cm");
    let url = server.url();
    let id = Uuid::now_v7().to_string();
    let out = run(&[
        "send",
        "--resume",
        &id,
        "--profile",
        &sender,
        "--server",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("send the document again as a new one"),
        "{}",
        text(&out)
    );
}

/// The attack a review found: `send --resume` of a document sent *to* this committee
/// used to report it as "already sent by us" (its receipt verified) because the server
/// shows documents to their recipients too. Only a document this client kept, or one its
/// own organisation sent, may be resumed or reported complete.
#[tokio::test(flavor = "multi_thread")]
async fn resume_of_a_document_sent_to_us_is_refused() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("cong-van.txt");
    std::fs::write(&file, "Kính gửi Đảng ủy thị trấn Chúc Sơn").unwrap();
    let number = crate::support::next_number();
    let mut request = congvan::client::send::SendRequest::new(
        "CV",
        &number,
        "CV/HU",
        "Về việc thử tiếp tục gửi",
        vec![file],
    );
    request.to = vec![congvan::directory::OrgId::parse("hn/cm/chuc-son").unwrap()];
    let sent = server
        .client("hn/cm")
        .send_document(&request)
        .await
        .unwrap();

    let recipient = profile(&server, "hn/cm/chuc-son");
    let url = server.url();
    let id = sent.id.to_string();
    let out = run(&[
        "send",
        "--resume",
        &id,
        "--profile",
        &recipient,
        "--server",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nothing of yours to resume"),
        "{}",
        text(&out)
    );
    assert!(!stderr.contains("already had"), "{}", text(&out));

    // The sender itself, with nothing kept, is told the document is complete.
    let sender = profile(&server, "hn/cm");
    let out = run(&[
        "send",
        "--resume",
        &id,
        "--profile",
        &sender,
        "--server",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A review found that a fetch stopped by Ctrl-C left its staging directory (which may
/// hold decrypted text not yet verified) in the output directory. Now the fetch catches
/// SIGINT and SIGTERM, removes the staging directory and says so; nothing is left.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_a_classified_fetch_leaves_nothing_behind() {
    let server = server_allowing_mat().await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("mat.bin");
    noise_file(&file, 24 << 20);
    let number = crate::support::next_number();
    let mut request = congvan::client::send::SendRequest::new(
        "QĐ",
        &number,
        "QĐ/HU",
        "Quyết định mật thử dừng tải",
        vec![file],
    );
    request.to = vec![congvan::directory::OrgId::parse("hn/cm/chuc-son").unwrap()];
    request.classification = congvan::document::manifest::Classification::Mat;
    let sent = server
        .client("hn/cm")
        .send_document(&request)
        .await
        .unwrap();

    let (url, forwarded) = slow_relay(server.addr, Slow::Down, 2 << 20).await;
    let recipient = profile(&server, "hn/cm/chuc-son");
    let out_dir = work.path().join("nhan");
    std::fs::create_dir_all(&out_dir).unwrap();
    let id = sent.id.to_string();
    let out_arg = out_dir.display().to_string();
    let child = congvan()
        .args([
            "fetch",
            &id,
            "--out",
            &out_arg,
            "--profile",
            &recipient,
            "--server",
            &url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while forwarded.load(Ordering::Relaxed) < 4 << 20 {
        assert!(Instant::now() < deadline, "the download never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The staging directory exists while the download runs.
    let staged = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };
    assert!(
        staged(&out_dir)
            .iter()
            .any(|n| n.starts_with(".congvan-fetch-")),
        "no staging directory while fetching: {:?}",
        staged(&out_dir)
    );
    let pid = child.id().to_string();
    let killed =
        tokio::task::block_in_place(|| Command::new("kill").args(["-INT", &pid]).status().unwrap());
    assert!(killed.success());
    let out = tokio::task::block_in_place(|| child.wait_with_output().unwrap());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("partial download was removed"),
        "{}",
        text(&out)
    );
    assert!(
        staged(&out_dir).is_empty(),
        "left behind after Ctrl-C: {:?}",
        staged(&out_dir)
    );
}

/// A large payload is written back to the disk while it arrives, in windows of
/// `WRITE_BEHIND_BYTES` (issue 16), and arrives in HTTP/2 frames of up to 256 KiB. Neither
/// may let altered bytes through: a payload with one bit flipped after the first windows
/// went to the disk is refused by its digest at the end, the document still awaits its
/// payload and no file is left behind; the right bytes are then accepted, stored exactly
/// and fetched back unchanged by the recipient.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_upload_altered_after_write_behind_began_is_refused() {
    use crate::support::{TestDoc, assert_code};
    use futures_util::StreamExt as _;

    let window = usize::try_from(congvan::store::blobs::WRITE_BEHIND_BYTES).unwrap();
    let server = TestServer::start().await;
    let sender = server.client("hn/cm");
    let file = server.dir.path().join("large.bin");
    noise_file(&file, 3 * window + 12_345);
    let payload = std::fs::read(&file).unwrap();
    let mut doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    doc.set_payload(payload.clone());
    let sha = doc.manifest["payload"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = doc.submit(&server, &sender).await.unwrap();
    assert_eq!(status, 201);

    let mut altered = payload.clone();
    altered[2 * window + 4_096] ^= 1;
    assert_code(
        doc.upload(&sender, altered).await,
        "payload_digest_mismatch",
    );
    let view: serde_json::Value = sender
        .get_json(&format!("/v1/documents/{}", doc.id()))
        .await
        .unwrap();
    assert_eq!(view["state"], "awaiting_payload");
    let data = server.dir.path().join("data");
    let blob = data.join("blobs/sha256").join(&sha[..2]).join(&sha);
    assert!(!blob.exists(), "a refused payload was stored");
    assert_eq!(std::fs::read_dir(data.join("tmp")).unwrap().count(), 0);

    let (status, _) = doc.upload(&sender, payload.clone()).await.unwrap();
    assert_eq!(status, 201);
    assert!(
        std::fs::read(&blob).unwrap() == payload,
        "the stored blob differs"
    );
    let response = server
        .client("hn/cm/chuc-son")
        .get_stream(&format!("/v1/documents/{}/payload", doc.id()))
        .await
        .unwrap();
    let mut fetched = Vec::with_capacity(payload.len());
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        fetched.extend_from_slice(&chunk.unwrap());
    }
    assert!(fetched == payload, "the fetched payload differs");
}
