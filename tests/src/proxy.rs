//! A TCP proxy on a loopback port that can freeze: while frozen it holds
//! every byte in both directions without closing anything, as a database
//! behind a stalled network or a paused VM looks to its clients.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// The proxy; stops with the value.
pub struct FreezableProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    frozen: watch::Sender<bool>,
    trigger: Arc<Mutex<Option<Vec<u8>>>>,
    task: JoinHandle<()>,
}

impl FreezableProxy {
    /// Forwards `127.0.0.1:{port}` to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (frozen, _) = watch::channel(false);
        let trigger = Arc::new(Mutex::new(None::<Vec<u8>>));
        let task = {
            let frozen = frozen.clone();
            let trigger = trigger.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(target).await else {
                        continue;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(pump(
                        client_read,
                        server_write,
                        frozen.clone(),
                        Some(trigger.clone()),
                    ));
                    tokio::spawn(pump(server_read, client_write, frozen.clone(), None));
                }
            })
        };
        Self {
            addr,
            frozen,
            trigger,
            task,
        }
    }

    /// Holds every byte from now on.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Freezes the moment a client sends `pattern` (that chunk is held too).
    pub fn freeze_on(&self, pattern: &[u8]) {
        *self.trigger.lock().unwrap() = Some(pattern.to_vec());
    }

    /// Lets the held bytes and everything after through.
    pub fn thaw(&self) {
        *self.trigger.lock().unwrap() = None;
        self.frozen.send_replace(false);
    }

    /// Whether it is frozen now.
    pub fn is_frozen(&self) -> bool {
        *self.frozen.borrow()
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: watch::Sender<bool>,
    trigger: Option<Arc<Mutex<Option<Vec<u8>>>>>,
) {
    let mut thawed = frozen.subscribe();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let Ok(read) = from.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            let _ = to.shutdown().await;
            return;
        }
        let chunk = &buffer[..read];
        if let Some(trigger) = &trigger {
            let hit = trigger.lock().unwrap().as_ref().is_some_and(|pattern| {
                chunk
                    .windows(pattern.len())
                    .any(|window| window == pattern.as_slice())
            });
            if hit {
                frozen.send_replace(true);
            }
        }
        if thawed.wait_for(|frozen| !frozen).await.is_err() {
            return;
        }
        if to.write_all(chunk).await.is_err() {
            return;
        }
    }
}
