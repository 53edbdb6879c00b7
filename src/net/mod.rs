//! The network edge of one shard: its SO_REUSEPORT listener, size-prefixed framing, one task per
//! connection.
//!
//! Owns: accepting (bounded by a per-shard connection semaphore), reading whole frames into pool buffers
//! after checking the size prefix against `FRAME_BYTES_MAX`, writing responses in request order.
//! Never: decoding request bodies or touching partitions (that is `handlers`).
//!
//! A connection runs one request at a time, as Kafka brokers do: a client may pipeline requests, and
//! answering them strictly in order is what the protocol requires.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io;
use std::rc::Rc;

use bytes::{BufMut, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::sync::Semaphore;
use log::{debug, info, warn};
use shards::pool::PoolBuf;

use crate::config::Config;
use crate::handlers::{self, BrokerContext, Outcome};
use crate::limits::{FRAME_BYTES_MAX, FRAME_BYTES_MIN};

/// A connection's response buffer keeps its capacity between requests; beyond this it is shrunk back
/// so one large fetch does not pin memory for the life of an idle connection.
const WRITE_BUFFER_BYTES_KEPT_MAX: usize = 1024 * 1024;

/// Binds the Kafka port on this shard. glommio sets SO_REUSEPORT, so every shard binds the same address
/// and the kernel spreads new connections over them.
pub fn bind(config: &Config) -> io::Result<TcpListener> {
    TcpListener::bind((config.listen, config.port))
        .map_err(|error| io::Error::other(error.to_string()))
}

/// Accepts connections until the shard stops.
pub async fn serve(listener: TcpListener, context: Rc<BrokerContext>, connections_max: usize) {
    let permits = Rc::new(Semaphore::new(connections_max as u64));
    loop {
        let accepted = futures_lite::future::or(
            async {
                let permit = permits.acquire_static_permit(1).await.ok()?;
                Some((listener.accept().await, permit))
            },
            async {
                context.shard.wait_stopped().await;
                None
            },
        )
        .await;
        let Some((stream, permit)) = accepted else {
            break;
        };
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                warn!("{}: accept failed: {error}", context.shard.id);
                continue;
            }
        };
        let context = context.clone();
        glommio::spawn_local(async move {
            let peer = stream
                .peer_addr()
                .map(|address| address.to_string())
                .unwrap_or_default();
            // What group descriptions show as a member's host: the address without the port.
            let host = stream
                .peer_addr()
                .map(|address| address.ip().to_string())
                .unwrap_or_default();
            debug!("{}: connection from {peer}", context.shard.id);
            match connection(stream, &context, &host).await {
                Ok(()) => debug!("{}: {peer} closed", context.shard.id),
                Err(error) => info!(
                    "{}: closing connection from {peer}: {error}",
                    context.shard.id
                ),
            }
            drop(permit);
        })
        .detach();
    }
}

async fn connection(mut stream: TcpStream, context: &BrokerContext, host: &str) -> io::Result<()> {
    let peer = handlers::Peer { address: host };
    stream
        .set_nodelay(true)
        .map_err(|error| io::Error::other(error.to_string()))?;
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        let mut prefix = [0u8; 4];
        match stream.read_exact(&mut prefix).await {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error),
        }
        let size = i32::from_be_bytes(prefix);
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if !(FRAME_BYTES_MIN..=FRAME_BYTES_MAX).contains(&size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame size {size} out of bounds"),
            ));
        }
        let mut frame = PoolBuf::acquire(size).await;
        stream.read_exact(&mut frame).await?;
        out.clear();
        if out.capacity() > WRITE_BUFFER_BYTES_KEPT_MAX {
            out = BytesMut::with_capacity(64 * 1024);
        }
        out.put_i32(0);
        match handlers::handle(context, &peer, frame.into_bytes(), &mut out).await {
            Outcome::Respond => {
                let length = i32::try_from(out.len() - 4).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "response too large")
                })?;
                if let Some(prefix) = out.get_mut(..4) {
                    prefix.copy_from_slice(&length.to_be_bytes());
                }
                stream.write_all(&out).await?;
            }
            Outcome::NoResponse => {}
            Outcome::Close(reason) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, reason));
            }
        }
        if context.shard.is_stopped() {
            return Ok(());
        }
    }
}
