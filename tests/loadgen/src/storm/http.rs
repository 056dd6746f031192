//! The HTTP/1.1 the storm's routers and phones speak, sans-IO: a request written into bytes, and
//! a response read from whatever bytes have come so far (status, headers, a body by
//! Content-Length or chunked). It is what a device's small client does and no more; both
//! servers it meets (provd's ACS and profile server) are hyper underneath.

/// The largest response head or body a device takes: far past a profile or a CWMP envelope.
pub const MAX_RESPONSE: usize = 256 << 10;

/// A response read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// (lower-case name, value), in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The server said it closes the connection after this response.
    pub close: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Writes a request: `headers` as given, then Host, Content-Length when there is a body (or the
/// method is POST), and the body.
pub fn request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || method == "POST" {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// What the bytes so far make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Not all of it yet.
    More,
    /// A whole response, and how many bytes of the input it took.
    Done(Response, usize),
    Bad(String),
}

fn find(h: &[u8], needle: &[u8]) -> Option<usize> {
    h.windows(needle.len()).position(|w| w == needle)
}

/// Reads one response from the start of `buf` (to a GET or POST: the devices send no HEAD).
/// Total: any bytes give `More`, `Done` or `Bad`.
pub fn parse(buf: &[u8]) -> Parsed {
    let Some(head_len) = find(buf, b"\r\n\r\n").map(|i| i + 4) else {
        return if buf.len() > MAX_RESPONSE {
            Parsed::Bad("response head too long".into())
        } else {
            Parsed::More
        };
    };
    let Ok(head) = std::str::from_utf8(&buf[..head_len - 4]) else {
        return Parsed::Bad("response head is not UTF-8".into());
    };
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Parsed::Bad(format!("not an HTTP/1.x status line: {status_line:?}"));
    }
    let Some(status) = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..1000).contains(s))
    else {
        return Parsed::Bad(format!("bad status line: {status_line:?}"));
    };
    let mut headers = Vec::new();
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            return Parsed::Bad(format!("bad header line: {l:?}"));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let close =
        get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) || version == "HTTP/1.0";
    let rest = &buf[head_len..];
    let no_body = status == 204 || status == 304 || status < 200;
    let (body, used) = if no_body {
        (Vec::new(), 0)
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        match dechunk(rest) {
            Ok(Some(x)) => x,
            Ok(None) => return Parsed::More,
            Err(e) => return Parsed::Bad(e),
        }
    } else if let Some(v) = get("content-length") {
        let Ok(n) = v.parse::<usize>() else {
            return Parsed::Bad(format!("bad Content-Length: {v:?}"));
        };
        if n > MAX_RESPONSE {
            return Parsed::Bad(format!("body of {n} bytes is too long"));
        }
        if rest.len() < n {
            return Parsed::More;
        }
        (rest[..n].to_vec(), n)
    } else {
        // No length: the body runs to the end of the connection, which a device cannot tell
        // apart from a cut; neither server does this.
        return Parsed::Bad("response without Content-Length".into());
    };
    Parsed::Done(
        Response {
            status,
            headers,
            body,
            close,
        },
        head_len + used,
    )
}

/// A chunked body: `Ok(None)` until its last chunk and trailer are in.
fn dechunk(mut b: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let start = b.len();
    let mut body = Vec::new();
    loop {
        let Some(eol) = find(b, b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&b[..eol]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        if body.len() + size > MAX_RESPONSE {
            return Err("chunked body too long".into());
        }
        b = &b[eol + 2..];
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let Some(eol) = find(b, b"\r\n") else {
                    return Ok(None);
                };
                b = &b[eol + 2..];
                if eol == 0 {
                    return Ok(Some((body, start - b.len())));
                }
            }
        }
        if b.len() < size + 2 {
            return Ok(None);
        }
        if &b[size..size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF".into());
        }
        body.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Splits `http://host[:port]/path` into (host:port as the Host header says it, address, path).
/// Only literal IPv4 hosts: the storm has no DNS.
pub fn split_url(url: &str) -> Result<(String, std::net::SocketAddrV4, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url:?}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| format!("bad port in {url:?}"))?),
        None => (hostport, 80),
    };
    let ip: std::net::Ipv4Addr = host
        .parse()
        .map_err(|_| format!("host of {url:?} is not an IPv4 address"))?;
    Ok((
        hostport.to_owned(),
        std::net::SocketAddrV4::new(ip, port),
        path.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_carries_host_length_and_body() {
        let r = request("POST", "1.2.3.4:7547", "/", &[("Cookie", "a=b")], b"xy");
        assert_eq!(
            r,
            b"POST / HTTP/1.1\r\nHost: 1.2.3.4:7547\r\nCookie: a=b\r\nContent-Length: 2\r\n\r\nxy"
        );
        let g = request("GET", "h", "/p", &[], b"");
        assert_eq!(g, b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n");
        let e = request("POST", "h", "/", &[], b"");
        assert!(e.ends_with(b"Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn a_response_comes_whole_or_not_at_all() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Profile-Version: 7\r\n\r\nhello";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]), Parsed::More, "cut at {cut}");
        }
        let Parsed::Done(r, used) = parse(full) else {
            panic!("not done")
        };
        assert_eq!((r.status, used, r.close), (200, full.len(), false));
        assert_eq!(r.body, b"hello");
        assert_eq!(r.header("x-profile-version"), Some("7"));
        // What follows the response is left for the next one.
        let mut two = full.to_vec();
        two.extend_from_slice(b"HTTP/1.1 204");
        assert!(matches!(parse(&two), Parsed::Done(_, n) if n == full.len()));
    }

    #[test]
    fn no_body_statuses_chunked_and_close() {
        let Parsed::Done(r, n) = parse(b"HTTP/1.1 204 No Content\r\n\r\n") else {
            panic!()
        };
        assert_eq!((r.status, n, r.body.len()), (204, 27, 0));
        let c = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n";
        for cut in 0..c.len() {
            assert_eq!(parse(&c[..cut]), Parsed::More, "cut at {cut}");
        }
        let Parsed::Done(r, n) = parse(c) else {
            panic!()
        };
        assert_eq!(
            (r.body.as_slice(), n, r.close),
            (&b"abcde"[..], c.len(), true)
        );
    }

    #[test]
    fn garbage_is_bad_not_a_panic() {
        for bad in [
            &b"SSH-2.0-x\r\n\r\n"[..],
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc",
        ] {
            assert!(matches!(parse(bad), Parsed::Bad(_)), "{bad:?}");
        }
        let huge = vec![b'a'; MAX_RESPONSE + 1];
        assert!(matches!(parse(&huge), Parsed::Bad(_)));
    }

    #[test]
    fn urls_split_into_host_address_and_path() {
        let (h, a, p) = split_url("http://198.18.0.1:7547/cwmp").unwrap();
        assert_eq!(
            (h.as_str(), a.to_string(), p.as_str()),
            ("198.18.0.1:7547", "198.18.0.1:7547".into(), "/cwmp")
        );
        let (_, a, p) = split_url("http://198.18.0.1").unwrap();
        assert_eq!((a.port(), p.as_str()), (80, "/"));
        assert!(split_url("https://198.18.0.1/").is_err());
        assert!(split_url("http://acs.example.net/").is_err());
    }
}
