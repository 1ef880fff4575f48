//! One client connection: its TLS handshake, HTTP/1.1 or HTTP/2 served with the
//! request-head limits, the caller's certificate re-checked, refusals answered, and the
//! connection closed on shutdown, on revocation, when idle or when the caps cut it.

use super::*;

pub(super) struct Connection {
    pub(super) metrics: Arc<metrics::Metrics>,
    pub(super) tls: Arc<TrustReloader>,
    pub(super) app: Router,
    pub(super) limits: Arc<Limits>,
    pub(super) table: Arc<limits::ConnectionTable>,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) _done: mpsc::Sender<()>,
}

/// How long a connection refused after its handshake (identity or server full) may take to
/// send the request that gets the refusal, so refused connections cannot linger.
const REFUSED_ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The largest HTTP/2 frame the server accepts (the protocol's default is 16 KiB). A large
/// upload arrives as one body chunk per DATA frame, and every chunk is a hand-off to the
/// blob writer's thread and a write system call there: 256 KiB frames make 16 times fewer
/// of both. A frame is buffered whole before it is decoded, so a connection can now make
/// the server hold up to 256 KiB of a partial frame (16 KiB before) next to the 1 MiB of
/// unread body that hyper's flow-control windows already allowed: about 1.25 MiB per
/// connection instead of 1.02, within the connection caps' budget.
const HTTP2_MAX_FRAME_BYTES: u32 = 256 * 1024;

/// An HTTP/1.1 and HTTP/2 connection builder with the request-head limits.
fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout())
        .max_buf_size(limits.header_bytes_max.max(8192))
        .max_headers(limits.headers_max.max(16));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.header_bytes_max).unwrap_or(u32::MAX))
        .max_concurrent_streams(64)
        .max_frame_size(HTTP2_MAX_FRAME_BYTES);
    builder
}

/// The API error for a connection the table did not admit.
fn refusal_error(refusal: limits::Refusal) -> ApiError {
    match refusal {
        limits::Refusal::IdentityFull(max) => ApiError::TooManyConnections(max),
        limits::Refusal::ServerFull => ApiError::ServerBusy,
    }
}

/// `refusal` as a response that also tells an HTTP/1.1 client the connection ends.
fn closing_response(refusal: ApiError) -> Response {
    let mut response = refusal.into_response();
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

impl Connection {
    pub(super) async fn serve(
        self,
        stream: TcpStream,
        peer: SocketAddr,
        pending: limits::PendingSlot,
    ) {
        let Some(acceptor) = self.tls.acceptor() else {
            self.metrics
                .handshakes_refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, "connection refused: TLS material is unusable");
            return;
        };
        // The generation the handshake verifies against: read before it, so a reload
        // during the handshake makes the first request verify again.
        let generation = self.tls.generation();
        let _ = stream.set_nodelay(true);
        let handshake =
            tokio::time::timeout(self.limits.handshake_timeout(), acceptor.accept(stream));
        let tls = tokio::select! {
            result = handshake => match result {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    self.metrics
                        .handshakes_refused
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%peer, error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    self.metrics
                        .handshakes_refused
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%peer, "TLS handshake timed out");
                    return;
                }
            },
            () = pending.cut() => {
                // Counted by the table's caller when it cut us.
                tracing::debug!(%peer, "handshake cut to make room for newer connections");
                return;
            }
        };
        let (peer_cert, chain) = {
            let (_, session) = tls.get_ref();
            let chain: Vec<_> = session
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default();
            let parsed = match chain.first() {
                Some(der) => CertInfo::from_der(der).map_err(|e| e.to_string()),
                // Unreachable with a verifier that requires certificates; refuse anyway.
                None => Err("no client certificate".to_owned()),
            };
            let not_after = parsed.as_ref().ok().and_then(|info| {
                time::OffsetDateTime::parse(
                    &info.not_after,
                    &time::format_description::well_known::Rfc3339,
                )
                .ok()
                .map(std::time::SystemTime::from)
            });
            (
                PeerCert(Arc::new(parsed)),
                Arc::new(PeerChain::new(chain, not_after, generation)),
            )
        };
        let identity = peer_cert.log_label();
        tracing::debug!(%peer, identity = %identity, "TLS connection established");

        let (admitted, evicted) = self.table.open(&pending, &identity);
        self.metrics.count_evicted(evicted);
        let slot = match admitted {
            Ok(slot) => slot,
            Err(refusal) => {
                self.metrics
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(%peer, identity = %identity,
                    code = refusal_error(refusal).status_and_code().1,
                    "connection refused after its handshake");
                self.refuse(tls, refusal, &pending).await;
                return;
            }
        };
        drop(pending);
        self.serve_open(tls, peer, peer_cert, chain, slot).await;
    }

    /// Answers every request on a connection that was not admitted with the error for
    /// `refusal` and closes it, within [`REFUSED_ANSWER_WITHIN`]; the connection keeps its handshake slot
    /// meanwhile, so refused connections stay counted and can be cut.
    async fn refuse(
        &self,
        tls: tokio_rustls::server::TlsStream<TcpStream>,
        refusal: limits::Refusal,
        pending: &limits::PendingSlot,
    ) {
        let service = tower::service_fn(move |_req: Request<hyper::body::Incoming>| {
            std::future::ready(Ok::<_, std::convert::Infallible>(closing_response(
                refusal_error(refusal),
            )))
        });
        let builder = http_builder(&self.limits);
        let conn = builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
        tokio::pin!(conn);
        tokio::select! {
            _ = tokio::time::timeout(REFUSED_ANSWER_WITHIN, conn.as_mut()) => {}
            () = pending.cut() => {}
        }
    }

    async fn serve_open(
        mut self,
        tls: tokio_rustls::server::TlsStream<TcpStream>,
        peer: SocketAddr,
        peer_cert: PeerCert,
        chain: Arc<PeerChain>,
        slot: limits::OpenSlot,
    ) {
        let slot = Arc::new(slot);
        let service = {
            let slot = slot.clone();
            let app = self.app.clone();
            let trust = self.tls.clone();
            let metrics = self.metrics.clone();
            tower::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                let in_flight = slot.request();
                // Before every request: the certificate must still pass the trust in
                // force. A refusal closes the connection, so a revoked client has to
                // handshake again, which the new CRLs refuse.
                let verdict = chain.check(&trust);
                if let Err(refusal) = &verdict {
                    metrics.certificate_closed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%peer, identity = %peer_cert.log_label(),
                        code = refusal.status_and_code().1,
                        "closing a connection whose certificate no longer passes");
                    slot.close();
                }
                req.extensions_mut().insert(peer_cert.clone());
                let app = app.clone();
                async move {
                    let _in_flight = in_flight;
                    match verdict {
                        Ok(()) => app.oneshot(req).await,
                        Err(refusal) => Ok(closing_response(refusal)),
                    }
                }
            })
        };
        let service = TowerToHyperService::new(service);
        let builder = http_builder(&self.limits);
        let io = limits::TrackedIo::new(tls, slot.activity.clone());
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let idle_timeout = self.limits.idle_timeout();
        let age_max = self.limits.connection_age_max();
        let opened = Instant::now();
        let tick = (idle_timeout / 4)
            .min(age_max / 4)
            .max(std::time::Duration::from_millis(50));
        let mut watchdog = tokio::time::interval(tick);
        // Once set, the connection is finishing its request in flight and then closes.
        let mut closing = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = watchdog.tick() => {
                    if slot.activity.idle() >= idle_timeout {
                        // Idle keep-alive connections close at once; a request in flight
                        // would have moved bytes within the timeout.
                        self.metrics.idle_closed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%peer, "closing an idle connection");
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(idle_timeout, conn.as_mut()).await;
                        return;
                    }
                    if !closing && opened.elapsed() >= age_max {
                        // The request in flight (if any) finishes; the client reconnects
                        // and its certificate is verified afresh.
                        closing = true;
                        self.metrics.age_closed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%peer, "closing a connection at its maximum age");
                        conn.as_mut().graceful_shutdown();
                    }
                }
                () = slot.closing(), if !closing => {
                    closing = true;
                    tracing::debug!(%peer, "closing a connection on the server's request");
                    conn.as_mut().graceful_shutdown();
                }
                _ = self.stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                    return;
                }
            }
        }
    }
}
