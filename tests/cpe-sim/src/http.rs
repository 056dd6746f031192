//! A small HTTP/1.1 client over one TCP connection: what the simulator needs (keep-alive,
//! Content-Length and chunked bodies, headers kept for cookies and challenges) and no more. The
//! load mode writes requests and reads answers on this path millions of times, which is why it
//! is not a general client library.

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits `http://host:port/path` into (host, port, path).
pub fn split_url(url: &str) -> Result<(String, u16, String)> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().context("port")?),
        None => (hostport, 80),
    };
    Ok((host.to_owned(), port, path.to_owned()))
}

#[derive(Debug)]
pub struct Conn {
    r: BufReader<TcpStream>,
    host: String,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn connect(host: &str, port: u16) -> Result<Conn> {
        let s = TcpStream::connect((host, port))
            .await
            .with_context(|| format!("connecting to {host}:{port}"))?;
        s.set_nodelay(true)?;
        Ok(Conn {
            r: BufReader::with_capacity(16 << 10, s),
            host: format!("{host}:{port}"),
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends one request and reads its response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        self.send(method, path, headers, body).await?;
        self.read_response(method == "HEAD").await
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<()> {
        use std::io::Write;
        self.buf.clear();
        write!(
            self.buf,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n",
            self.host
        )?;
        for (k, v) in headers {
            write!(self.buf, "{k}: {v}\r\n")?;
        }
        write!(self.buf, "Content-Length: {}\r\n\r\n", body.len())?;
        self.buf.extend_from_slice(body);
        self.r.get_mut().write_all(&self.buf).await?;
        Ok(())
    }

    pub async fn read_response(&mut self, head_only: bool) -> Result<Response> {
        let mut line = String::new();
        if self.r.read_line(&mut line).await? == 0 {
            bail!("connection closed before a response");
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            if self.r.read_line(&mut line).await? == 0 {
                bail!("connection closed in the response head");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok(resp);
        }
        if let Some(n) = resp.header("content-length") {
            let n: usize = n.parse().context("content-length")?;
            anyhow::ensure!(n <= 64 << 20, "body of {n} bytes is too large");
            resp.body.resize(n, 0);
            self.r.read_exact(&mut resp.body).await?;
        } else if resp
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            loop {
                line.clear();
                self.r.read_line(&mut line).await?;
                let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .context("chunk size")?;
                if n == 0 {
                    line.clear();
                    self.r.read_line(&mut line).await?;
                    break;
                }
                let at = resp.body.len();
                resp.body.resize(at + n, 0);
                self.r.read_exact(&mut resp.body[at..]).await?;
                line.clear();
                self.r.read_line(&mut line).await?;
            }
        } else {
            self.r.read_to_end(&mut resp.body).await?;
        }
        Ok(resp)
    }
}
