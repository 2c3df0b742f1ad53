//! A small RESP2 client for `inputs.redis`: one connection (TCP, TLS or a
//! Unix socket), commands sent as arrays of bulk strings, replies read with
//! a budget — a server that answers a gigabyte, or an array of a billion
//! elements, costs one error, never graft's memory.

use std::sync::Arc;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};

/// Nested arrays deeper than this are refused.
const MAX_DEPTH: usize = 8;
/// A status, error or length line longer than this is refused.
const MAX_LINE: usize = 64 * 1024;

/// A reply of the server.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Reply {
    /// `+OK`
    Status(String),
    /// `:42`
    Int(i64),
    /// `$3\r\nabc` (`None`: `$-1`, nil)
    Bulk(Option<Vec<u8>>),
    /// `*2 ...` (`None`: `*-1`, nil)
    Array(Option<Vec<Reply>>),
}

/// Why a command gave no reply.
#[derive(Debug, thiserror::Error)]
pub(super) enum RespError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("reply larger than max_reply_size ({0} bytes)")]
    TooLarge(usize),
    /// The server's `-ERR ...` answer.
    #[error("server replied: {0}")]
    Server(String),
}

/// A byte stream to a server.
pub(super) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Where a server listens.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// `host:port`, with TLS when configured.
    Tcp { host: String, port: u16 },
    /// A Unix socket path.
    Unix(String),
}

/// One connection.
pub(super) struct Conn {
    io: BufReader<Box<dyn Stream>>,
}

impl Conn {
    /// Connect (and shake hands when `tls` is given).
    pub(super) async fn connect(
        endpoint: &Endpoint,
        tls: Option<&Arc<rustls::ClientConfig>>,
        server_name: Option<&str>,
    ) -> Result<Self, RespError> {
        let stream: Box<dyn Stream> = match endpoint {
            Endpoint::Tcp { host, port } => {
                let tcp = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                tcp.set_nodelay(true)?;
                match tls {
                    Some(config) => {
                        let name = server_name.unwrap_or(host);
                        let name = rustls::pki_types::ServerName::try_from(name.to_owned())
                            .map_err(|_| {
                                RespError::Protocol("the host is not a TLS server name")
                            })?;
                        let connector = tokio_rustls::TlsConnector::from(config.clone());
                        Box::new(connector.connect(name, tcp).await?)
                    }
                    None => Box::new(tcp),
                }
            }
            Endpoint::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
        };
        Ok(Self {
            io: BufReader::new(stream),
        })
    }

    /// Send one command and read its reply, at most `max_reply` bytes of
    /// payload. An error reply is [`RespError::Server`].
    pub(super) async fn command(
        &mut self,
        args: &[&[u8]],
        max_reply: usize,
    ) -> Result<Reply, RespError> {
        let mut frame = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            frame.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            frame.extend_from_slice(a);
            frame.extend_from_slice(b"\r\n");
        }
        self.io.get_mut().write_all(&frame).await?;
        self.io.get_mut().flush().await?;
        let mut budget = max_reply;
        read_reply(&mut self.io, &mut budget, 0, max_reply).await
    }
}

/// Read one reply from `r`, taking what it holds from `budget`.
pub(super) async fn read_reply<R: AsyncBufRead + Unpin + Send>(
    r: &mut R,
    budget: &mut usize,
    depth: usize,
    max: usize,
) -> Result<Reply, RespError> {
    if depth > MAX_DEPTH {
        return Err(RespError::Protocol("arrays nested too deep"));
    }
    let line = read_line(r).await?;
    take(budget, line.len() + 2, max)?;
    let (kind, rest) = line
        .split_first()
        .ok_or(RespError::Protocol("empty line"))?;
    let text = || String::from_utf8_lossy(rest).into_owned();
    let number = || -> Result<i64, RespError> {
        std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(RespError::Protocol("bad number"))
    };
    match kind {
        b'+' => Ok(Reply::Status(text())),
        b'-' => Err(RespError::Server(text())),
        b':' => Ok(Reply::Int(number()?)),
        b'$' => {
            let n = number()?;
            if n < 0 {
                return Ok(Reply::Bulk(None));
            }
            let n = usize::try_from(n).map_err(|_| RespError::Protocol("bad length"))?;
            take(budget, n.saturating_add(2), max)?;
            let mut data = vec![0; n + 2];
            r.read_exact(&mut data).await?;
            if !data.ends_with(b"\r\n") {
                return Err(RespError::Protocol("bulk string without CRLF"));
            }
            data.truncate(n);
            Ok(Reply::Bulk(Some(data)))
        }
        b'*' => {
            let n = number()?;
            if n < 0 {
                return Ok(Reply::Array(None));
            }
            let n = usize::try_from(n).map_err(|_| RespError::Protocol("bad length"))?;
            // Every element takes at least 3 bytes ("+\r\n"): refuse a count
            // the budget cannot hold before allocating anything.
            if n.saturating_mul(3) > *budget {
                return Err(RespError::TooLarge(max));
            }
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                items.push(Box::pin(read_reply(r, budget, depth + 1, max)).await?);
            }
            Ok(Reply::Array(Some(items)))
        }
        _ => Err(RespError::Protocol("unknown reply type")),
    }
}

fn take(budget: &mut usize, n: usize, max: usize) -> Result<(), RespError> {
    *budget = budget.checked_sub(n).ok_or(RespError::TooLarge(max))?;
    Ok(())
}

/// A line up to CRLF (without it), at most [`MAX_LINE`] bytes.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Vec<u8>, RespError> {
    let mut line = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE as u64 + 2)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Err(RespError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    if !line.ends_with(b"\r\n") {
        return Err(RespError::Protocol("line too long or without CRLF"));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8], max: usize) -> Result<Reply, RespError> {
        let mut r = bytes;
        let mut budget = max;
        read_reply(&mut r, &mut budget, 0, max).await
    }

    #[tokio::test]
    async fn replies_are_read_within_the_budget() {
        assert_eq!(
            parse(b"+OK\r\n", 100).await.unwrap(),
            Reply::Status("OK".into())
        );
        assert_eq!(parse(b":-7\r\n", 100).await.unwrap(), Reply::Int(-7));
        assert_eq!(
            parse(b"$3\r\nabc\r\n", 100).await.unwrap(),
            Reply::Bulk(Some(b"abc".to_vec()))
        );
        assert_eq!(parse(b"$-1\r\n", 100).await.unwrap(), Reply::Bulk(None));
        assert_eq!(
            parse(b"*2\r\n:1\r\n$1\r\nx\r\n", 100).await.unwrap(),
            Reply::Array(Some(vec![Reply::Int(1), Reply::Bulk(Some(b"x".to_vec()))]))
        );
        assert!(matches!(
            parse(b"-WRONGPASS nope\r\n", 100).await,
            Err(RespError::Server(m)) if m == "WRONGPASS nope"
        ));
        // A declared gigabyte is refused before anything is allocated.
        assert!(matches!(
            parse(b"$1000000000\r\n", 1000).await,
            Err(RespError::TooLarge(1000))
        ));
        assert!(matches!(
            parse(b"*1000000000\r\n", 1000).await,
            Err(RespError::TooLarge(_))
        ));
        assert!(matches!(
            parse(b"$5\r\nab", 100).await,
            Err(RespError::Io(_))
        ));
        assert!(matches!(
            parse(b"?x\r\n", 100).await,
            Err(RespError::Protocol(_))
        ));
        let deep = "*1\r\n".repeat(20) + ":1\r\n";
        assert!(matches!(
            parse(deep.as_bytes(), 1000).await,
            Err(RespError::Protocol(_))
        ));
        let long = vec![b'+'; MAX_LINE + 10];
        assert!(matches!(
            parse(&long, usize::MAX).await,
            Err(RespError::Protocol(_))
        ));
    }
}
