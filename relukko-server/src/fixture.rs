//! [`TestServer`]: the server in-process, on its own thread and runtime.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use super::config::ServerConfig;

/// A Relukko-compatible server running in this process on `127.0.0.1`, for tests.
///
/// The server runs on a thread of its own with its own tokio runtime, so it
/// works the same from a plain `#[test]` and from inside `#[tokio::test]`
/// (also a current-thread one). It keeps its locks in memory: dropping it (or
/// [`stop`](TestServer::stop)) forgets them all, cuts open connections and
/// WebSockets within about two seconds, and joins the thread. Drop it
/// mid-test to simulate a server that dies.
///
/// ```
/// let server = relukko_server::TestServer::start();
/// assert!(server.base_url().starts_with("http://127.0.0.1:"));
/// assert!(!server.api_key().is_empty());
/// ```
pub struct TestServer {
    addr: SocketAddr,
    /// `http://<addr>`, kept so [`base_url`](TestServer::base_url) can lend it.
    base_url: String,
    api_key: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with a random API key, grace 3 minutes and clean-up every 30 seconds.
    pub fn start() -> TestServer {
        TestServer::builder().start()
    }

    /// A builder to choose the key, grace period, clean-up interval or port.
    #[must_use]
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder {
            api_key: None,
            grace: super::config::DEFAULT_GRACE,
            cleanup_interval: super::config::DEFAULT_CLEANUP_INTERVAL,
            port: 0,
            page_login: None,
            max_websockets: super::config::DEFAULT_MAX_WEBSOCKETS,
            database: None,
            postgres: None,
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The API key the server expects in `X-API-Key`.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for it; the same as dropping it.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread has already been printed; re-raising it
            // from a destructor could abort the test process.
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .field("api_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Configures a [`TestServer`]; made by [`TestServer::builder`].
pub struct TestServerBuilder {
    api_key: Option<String>,
    grace: Duration,
    cleanup_interval: Duration,
    port: u16,
    page_login: Option<(String, String)>,
    max_websockets: usize,
    database: Option<std::path::PathBuf>,
    postgres: Option<String>,
}

impl fmt::Debug for TestServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServerBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("grace", &self.grace)
            .field("cleanup_interval", &self.cleanup_interval)
            .field("port", &self.port)
            .field("max_websockets", &self.max_websockets)
            .field("database", &self.database)
            .field(
                "postgres",
                &self.postgres.as_deref().map(super::config::shown_url),
            )
            .field(
                "page_login",
                &self.page_login.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl TestServerBuilder {
    /// The API key to expect (default: a random one).
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// How long an expired lock lingers before the clean-up pass removes it (default 3 minutes).
    #[must_use]
    pub fn grace(mut self, d: Duration) -> Self {
        self.grace = d;
        self
    }

    /// How often the clean-up pass runs (default 30 seconds).
    #[must_use]
    pub fn cleanup_interval(mut self, d: Duration) -> Self {
        self.cleanup_interval = d;
        self
    }

    /// The port to listen on; `0` (the default) picks a free one. A fixed port
    /// lets a test restart a stopped server at the same address.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Protects the page at `GET /` with HTTP basic auth (default: none, and
    /// the page asks for the API key).
    #[must_use]
    pub fn page_login(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.page_login = Some((user.into(), password.into()));
        self
    }

    /// The most WebSocket clients at once (default 4096); an upgrade over it
    /// is answered `503`, as [`ServerConfig::max_websockets`] says. Zero
    /// refuses every WebSocket, for tests of clients that must then poll.
    #[must_use]
    pub fn max_websockets(mut self, clients: usize) -> Self {
        self.max_websockets = clients;
        self
    }

    /// Keeps the locks in a database file, as [`ServerConfig::database`]
    /// (default: memory only).
    #[must_use]
    pub fn database(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.database = Some(path.into());
        self
    }

    /// Keeps the locks in PostgreSQL at `url`, as [`ServerConfig::postgres`]:
    /// several `TestServer`s on one URL are replicas of one server.
    #[must_use]
    pub fn postgres(mut self, url: impl Into<String>) -> Self {
        self.postgres = Some(url.into());
        self
    }

    /// Starts the server and returns once it is listening.
    ///
    /// # Panics
    ///
    /// If the port cannot be bound or the runtime cannot start: this is a test
    /// fixture, and the message says what failed.
    pub fn start(self) -> TestServer {
        let api_key = self.api_key.unwrap_or_else(random_key);
        let mut config = ServerConfig::new(api_key.clone())
            .grace(self.grace)
            .cleanup_interval(self.cleanup_interval)
            .max_websockets(self.max_websockets);
        if let Some(path) = &self.database {
            config = config.database(path);
        }
        if let Some(url) = &self.postgres {
            config = config.postgres(url.clone());
        }
        if let Some((user, password)) = &self.page_login {
            config = config.page_login(user, password);
        }

        // Bind here, not on the server thread: a bind failure then panics in the
        // test that asked for it, and the socket listens before `start` returns.
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, self.port))
            .unwrap_or_else(|e| {
                panic!(
                    "relukko TestServer: cannot listen on 127.0.0.1:{}: {e}",
                    self.port
                )
            });
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("relukko TestServer: no local address: {e}"));
        listener.set_nonblocking(true).unwrap_or_else(|e| {
            panic!("relukko TestServer: cannot make the socket non-blocking: {e}")
        });

        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name(format!("relukko-test-server-{}", addr.port()))
            .spawn(move || run_thread(listener, config, shutdown_rx, ready_tx))
            .unwrap_or_else(|e| panic!("relukko TestServer: cannot spawn its thread: {e}"));

        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("relukko TestServer: {e}"),
            Err(_) => panic!("relukko TestServer: the server thread died while starting"),
        }
        TestServer {
            addr,
            base_url: format!("http://{addr}"),
            api_key,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }
}

fn run_thread(
    listener: std::net::TcpListener,
    config: ServerConfig,
    shutdown: oneshot::Receiver<()>,
    ready: mpsc::Sender<Result<(), String>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot start a tokio runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(format!("cannot register the socket: {e}")));
                return;
            }
        };
        // The database (if any) opened before `start` returns: a test sees
        // its failure at once, and the first request finds it ready.
        let (state, stop_tx) = match super::run::open(config).await {
            Ok(opened) => opened,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let stop = async move {
            // A dropped sender (the TestServer vanished without Drop) also stops.
            let _ = shutdown.await;
        };
        if let Err(e) = super::run::serve_state(listener, state, stop_tx, stop).await {
            tracing::error!("relukko TestServer stopped with an error: {e}");
        }
    });
    // Whatever still runs (a connection past the bounded graceful shutdown) is cut here.
    runtime.shutdown_timeout(Duration::from_millis(500));
}

/// 32 random alphanumeric characters.
fn random_key() -> String {
    let mut rng = fastrand::Rng::new();
    (0..32).map(|_| rng.alphanumeric()).collect()
}
