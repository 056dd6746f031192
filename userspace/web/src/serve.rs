//! The accept loop and per-connection service: TLS handshake, HTTP/1.1 with keep-alive, the
//! [`Peer`] extension, limits, counters and the access log.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use http_body::Body as _;
use hyper::Request;
use hyper::body::Incoming;
use hyper::rt::{Read, Write};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::ClientCert;

/// Numbers the accepted connections ([`Peer::conn`]).
static NEXT_CONN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Who sent a request: inserted into every request's extensions.
#[derive(Debug, Clone)]
pub struct Peer {
    /// This connection among all the process accepted (never reused): what ties requests to
    /// one TCP connection when the client's address and port come back on a new one.
    pub conn: u64,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// Whether the request came over TLS.
    pub tls: bool,
    /// The client certificate rustls verified, if the client sent one.
    pub client_cert: Option<Arc<ClientCert>>,
}

/// What one listener accepts before it refuses.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most; beyond it new connections are closed at once (counted).
    pub max_connections: usize,
    /// Deadline for the TLS handshake and for each request head once the connection is open.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in flight is closed after this long.
    pub idle_timeout: Duration,
    /// Largest request head (request line + headers) in bytes; larger gets 431. hyper's floor
    /// is 8192.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
        }
    }
}

/// What one listener has done since it started. Shared with whoever reports stats.
#[derive(Debug, Default)]
pub struct WebCounters {
    pub connections: AtomicU64,
    /// Connections closed at once because `max_connections` were open.
    pub refused: AtomicU64,
    pub handshakes_ok: AtomicU64,
    pub handshakes_failed: AtomicU64,
    pub requests: AtomicU64,
    pub status_2xx: AtomicU64,
    pub status_3xx: AtomicU64,
    pub status_4xx: AtomicU64,
    pub status_5xx: AtomicU64,
    /// Connections that ended with an HTTP-level error (bad request head, timeout, reset).
    pub connection_errors: AtomicU64,
}

impl WebCounters {
    /// Every counter, name and value, in declaration order.
    pub fn entries(&self) -> Vec<(&'static str, u64)> {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("connections", l(&self.connections)),
            ("refused", l(&self.refused)),
            ("handshakes_ok", l(&self.handshakes_ok)),
            ("handshakes_failed", l(&self.handshakes_failed)),
            ("requests", l(&self.requests)),
            ("status_2xx", l(&self.status_2xx)),
            ("status_3xx", l(&self.status_3xx)),
            ("status_4xx", l(&self.status_4xx)),
            ("status_5xx", l(&self.status_5xx)),
            ("connection_errors", l(&self.connection_errors)),
        ]
    }

    fn count_status(&self, status: u16) {
        let c = match status {
            200..=299 => &self.status_2xx,
            300..=399 => &self.status_3xx,
            400..=499 => &self.status_4xx,
            _ => &self.status_5xx,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything about a listener but its socket, TLS and router.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub limits: Limits,
    pub counters: Arc<WebCounters>,
    /// One line per request on target `provd::access` (info). Off for benchmarks that measure
    /// the server rather than the log sink.
    pub access_log: bool,
}

/// The accept queue asked for (the kernel clamps it to `net.core.somaxconn`, 4096 by default).
pub const LISTEN_BACKLOG: u32 = 65_535;

/// A listener for a role's HTTP(S) port with a deep accept queue. After a power cut a region's
/// CPEs connect within a second; with tokio's default queue of 1,024 the boot storm's 20,000
/// routers and phones overflowed it 61,011 times (`ListenOverflows`), and each overflow left a
/// client's handshake half-done and its request retransmitted for seconds.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(LISTEN_BACKLOG)
}

/// Serves `app` on `listener` until `shutdown` completes, with the access log on and fresh
/// counters. See [`serve_with`].
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let opts = ServeOptions {
        limits,
        counters: Arc::default(),
        access_log: true,
    };
    serve_with(listener, tls, app, opts, shutdown).await
}

/// Serves `app` on `listener` (over TLS when `tls` is set) until `shutdown` completes. Then it
/// stops accepting, asks open connections to finish the request in flight and close, and
/// returns once they have (or after `header_timeout` more).
pub async fn serve_with(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let acceptor = tls.map(TlsAcceptor::from);
    let permits = Arc::new(Semaphore::new(opts.limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let opts = Arc::new(opts);
    let accept_errors = LogGate::default();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE/ENFILE/ENOBUFS: back off instead of spinning on the error.
                    if let Some(held) = accept_errors.allow() {
                        tracing::warn!(%local, error = %e, suppressed = held, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        opts.counters.connections.fetch_add(1, Ordering::Relaxed);
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            opts.counters.refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            peer: Peer {
                conn: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
                remote,
                local,
                tls: acceptor.is_some(),
                client_cert: None,
            },
            app: app.clone(),
            opts: opts.clone(),
            stop: stop_rx.clone(),
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            conn.run(stream, acceptor).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection task holds a permit; all permits back means all connections closed.
    let all = u32::try_from(opts.limits.max_connections).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(
        opts.limits.header_timeout,
        permits.acquire_many(all.min(Semaphore::MAX_PERMITS as u32)),
    );
    let _ = drained.await;
    Ok(())
}

struct Connection {
    peer: Peer,
    app: Router,
    opts: Arc<ServeOptions>,
    stop: watch::Receiver<bool>,
}

/// Handshake failures are logged through one gate per process: a flood of bad clients must
/// not become a flood of log lines.
static HANDSHAKE_LOG: LogGate = LogGate::per_sec(5);

impl Connection {
    async fn run(mut self, stream: TcpStream, acceptor: Option<TlsAcceptor>) {
        let Some(acceptor) = acceptor else {
            return self.http(TokioIo::new(stream)).await;
        };
        let handshake =
            tokio::time::timeout(self.opts.limits.header_timeout, acceptor.accept(stream));
        let tls = match handshake.await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return self.handshake_failed(&e.to_string()),
            Err(_) => return self.handshake_failed("timed out"),
        };
        self.opts
            .counters
            .handshakes_ok
            .fetch_add(1, Ordering::Relaxed);
        self.peer.client_cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| ClientCert::from_der(leaf))
            .map(Arc::new);
        self.http(TokioIo::new(tls)).await
    }

    fn handshake_failed(&self, why: &str) {
        self.opts
            .counters
            .handshakes_failed
            .fetch_add(1, Ordering::Relaxed);
        if let Some(held) = HANDSHAKE_LOG.allow() {
            tracing::warn!(remote = %self.peer.remote, error = why, suppressed = held,
                "TLS handshake failed");
        }
    }

    async fn http<I>(self, io: I)
    where
        I: Read + Write + Unpin + Send + 'static,
    {
        let Connection {
            peer,
            app,
            opts,
            mut stop,
        } = self;
        let svc_opts = opts.clone();
        let svc_peer = peer.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let started = Instant::now();
            req.extensions_mut().insert(svc_peer.clone());
            let logged = svc_opts
                .access_log
                .then(|| (req.method().clone(), req.uri().clone()));
            let app = app.clone();
            let opts = svc_opts.clone();
            let peer = svc_peer.clone();
            async move {
                let Ok(resp) = app.oneshot(req.map(Body::new)).await;
                let status = resp.status().as_u16();
                opts.counters.requests.fetch_add(1, Ordering::Relaxed);
                opts.counters.count_status(status);
                if let Some((method, uri)) = logged {
                    let bytes = resp.body().size_hint().exact();
                    tracing::info!(
                        target: "provd::access",
                        remote = %peer.remote,
                        %method,
                        path = uri.path(),
                        status,
                        bytes = bytes.map_or(-1, |b| b as i64),
                        micros = started.elapsed().as_micros() as u64,
                        tls = peer.tls,
                        cn = peer.client_cert.as_ref().and_then(|c| c.subject_cn.as_deref()),
                    );
                }
                Ok::<_, Infallible>(resp)
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(opts.limits.header_timeout)
            .max_buf_size(opts.limits.max_header_bytes.max(8192))
            .keep_alive(true);
        let idle = IdleIo::new(io, opts.limits.idle_timeout);
        let conn = builder.serve_connection(idle, service);
        let mut conn = pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = async { stop.wait_for(|stop| *stop).await.map(|_| ()) } => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if result.is_err() {
            opts.counters
                .connection_errors
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Closes a connection that neither reads nor writes for `idle`: hyper's header timeout only
/// starts once a request's first byte arrives, so a silent keep-alive connection would
/// otherwise hold a connection slot for ever.
struct IdleIo<I> {
    inner: I,
    idle: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<I> IdleIo<I> {
    fn new(inner: I, idle: Duration) -> Self {
        IdleIo {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn touch(&mut self) {
        let next = tokio::time::Instant::now() + self.idle;
        // Re-arming costs a timer-wheel update; do it at most every 1/8 of the period.
        if next - self.deadline.deadline() > self.idle / 8 {
            self.deadline.as_mut().reset(next);
        }
    }
}

impl<I: Read + Unpin> Read for IdleIo<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.touch();
                Poll::Ready(r)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::ErrorKind::TimedOut.into())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<I: Write + Unpin> Write for IdleIo<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = std::pin::Pin::new(&mut this.inner).poll_write(cx, buf);
        if r.is_ready() {
            this.touch();
        }
        r
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = std::pin::Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if r.is_ready() {
            this.touch();
        }
        r
    }
}

/// Lets a log line through at most `per_sec` times a second, shared by every task of a
/// service and without a lock; says how many were held back when the next one passes. For
/// the warnings bad clients cause: a flood of them must not become a flood of log lines.
#[derive(Debug)]
pub struct LogGate {
    per_sec: u64,
    /// The second (since process start) the current window belongs to.
    window: AtomicU64,
    used: AtomicU64,
    held: AtomicU64,
}

impl Default for LogGate {
    /// Five lines a second.
    fn default() -> Self {
        Self::per_sec(5)
    }
}

impl LogGate {
    /// At most `n` lines a second (at least one).
    pub const fn per_sec(n: u64) -> Self {
        LogGate {
            per_sec: if n == 0 { 1 } else { n },
            window: AtomicU64::new(u64::MAX),
            used: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    /// `Some(held_back)` if a line may be logged now.
    pub fn allow(&self) -> Option<u64> {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let now = START.get_or_init(Instant::now).elapsed().as_secs();
        if self.window.swap(now, Ordering::Relaxed) != now {
            self.used.store(0, Ordering::Relaxed);
        }
        if self.used.fetch_add(1, Ordering::Relaxed) < self.per_sec {
            Some(self.held.swap(0, Ordering::Relaxed))
        } else {
            self.held.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests;
