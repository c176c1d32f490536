//! `GET /metrics` and `GET /status`: the router and the thread that serves it.

use super::*;

/// What `GET /status` returns.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Every counter.
    #[serde(flatten)]
    pub counters: Snapshot,
    /// Files named in `[files] paths` not read yet.
    pub files_pending: u64,
    /// The concern list.
    pub concern_list: Vec<ListedConcern>,
}

/// A read-only view of a running sensor, for the HTTP endpoint and signals.
#[derive(Clone)]
pub struct SensorView {
    pub(super) metrics: Arc<Metrics>,
    pub(super) collector: Option<Stats>,
    pub(super) concerns: Arc<Concerns>,
    pub(super) files_pending: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for SensorView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SensorView").finish_non_exhaustive()
    }
}

impl SensorView {
    /// Counters and the concern list now.
    pub fn status(&self) -> Status {
        Status {
            counters: self.metrics.snapshot(self.collector.as_ref()),
            files_pending: self.files_pending.load(Ordering::Relaxed) as u64,
            concern_list: self.concerns.snapshot(),
        }
    }
}

/// `GET /metrics` (Prometheus text, open: counters only, no flow address) and `GET
/// /status` (JSON, with the concern list: only with the operator's or the overseer's token,
/// `auth`) over `view`; merge other routers (the sensor's ledger) into it with
/// [`Router::merge`].
pub fn http_router(view: SensorView, auth: StatusAuth) -> Router {
    async fn metrics(State((v, _)): State<(SensorView, StatusAuth)>) -> impl IntoResponse {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            v.status().counters.prometheus(),
        )
    }
    async fn status(
        State((v, auth)): State<(SensorView, StatusAuth)>,
        headers: HeaderMap,
    ) -> Response {
        match auth.authorize(&headers) {
            Ok(()) => axum::Json(v.status()).into_response(),
            Err(refused) => refused.into_response(),
        }
    }
    Router::new()
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state((view, auth))
}

pub(super) fn serve_http(
    failed: &Arc<Failed>,
    addr: SocketAddr,
    router: Router,
) -> Result<(SocketAddr, tokio::sync::oneshot::Sender<()>, JoinHandle<()>), RuntimeError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(io_err(format!("listening on {addr}")))?;
    let local = listener
        .local_addr()
        .map_err(io_err(format!("listening on {addr}")))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err(format!("listening on {addr}")))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("starting the HTTP runtime"))?;
    let t = spawn(failed, "sensor http", move || {
        rt.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "HTTP endpoint failed");
                    return;
                }
            };
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP endpoint failed");
            }
        });
    })?;
    Ok((local, tx, t))
}
