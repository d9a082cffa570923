//! [`CountingListener`]: `active_connections` as the number of open TCP
//! connections.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use axum::serve::Listener;
use metrics::Gauge;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpListener,
};

/// A listener that counts its open connections in the `active_connections`
/// gauge: up when a connection is accepted, down when the server drops it.
///
/// From [`Metrics::counting_listener`](crate::Metrics::counting_listener).
/// axum gives `ConnectInfo` to plain `TcpListener`s and to
/// [`tap_io`](axum::serve::ListenerExt::tap_io) listeners only, so for
/// `ConnectInfo<SocketAddr>`, serve `counting_listener(l).tap_io(|_| ())`.
#[derive(Debug)]
pub struct CountingListener<L = TcpListener> {
    inner: L,
    open: Gauge,
}

impl<L> CountingListener<L> {
    pub(crate) fn new(inner: L, open: Gauge) -> Self {
        Self { inner, open }
    }

    /// The wrapped listener.
    pub fn get_ref(&self) -> &L {
        &self.inner
    }

    /// The wrapped listener, mutably.
    pub fn get_mut(&mut self) -> &mut L {
        &mut self.inner
    }

    /// Takes the wrapped listener back.
    pub fn into_inner(self) -> L {
        self.inner
    }
}

impl<L: Listener> Listener for CountingListener<L> {
    type Io = CountedIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, address) = self.inner.accept().await;
        self.open.increment(1.0);
        let io = CountedIo {
            io,
            open: self.open.clone(),
        };
        (io, address)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection of a [`CountingListener`]; leaves the count when dropped.
#[derive(Debug)]
pub struct CountedIo<I> {
    io: I,
    open: Gauge,
}

impl<I> CountedIo<I> {
    /// The connection.
    pub fn get_ref(&self) -> &I {
        &self.io
    }

    /// The connection, mutably.
    pub fn get_mut(&mut self) -> &mut I {
        &mut self.io
    }
}

impl<I> Drop for CountedIo<I> {
    fn drop(&mut self) {
        self.open.decrement(1.0);
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for CountedIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for CountedIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
