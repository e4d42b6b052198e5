//! A TCP proxy a test can cut and restore, to stage an outage of a backend (PostgreSQL, the
//! Kafka broker) while the backend itself keeps its state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// Forwards TCP connections to an upstream address until cut; while cut, new connections are
/// accepted and closed at once, as by a backend that is down.
pub struct Proxy {
    /// The port the proxy listens on (127.0.0.1).
    pub port: u16,
    down: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// Starts forwarding from a free port of 127.0.0.1 to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve(listener, upstream)
    }

    /// Forwards from `listener` (bound by the caller) to `upstream`. The proxy runs on its own
    /// thread and runtime, so a test runtime whose workers are busy (or blocked in a client
    /// library waiting for the very backend behind the proxy) never stalls the forwarding.
    pub fn serve(listener: TcpListener, upstream: String) -> Self {
        let port = listener.local_addr().expect("addr").port();
        let listener = listener.into_std().expect("std listener");
        let down = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (is_down, tracked) = (down.clone(), connections.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-proxy")
            .enable_all()
            .build()
            .expect("proxy runtime");
        let handle = runtime.handle().clone();
        std::thread::spawn(move || runtime.block_on(std::future::pending::<()>()));
        handle.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("proxy listener");
            while let Ok((mut inbound, _)) = listener.accept().await {
                if is_down.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tracked.lock().await.push(task);
            }
        });
        Self { port, down, connections }
    }

    /// Closes every forwarded connection and refuses new ones.
    pub async fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for task in self.connections.lock().await.drain(..) {
            task.abort();
        }
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}
