//! HTTP_GET / SSL_GET: fetch each URL, check its status code, the MD5 digest of its body and a
//! regex over its body. SSL_GET does TLS with rustls and, like keepalived, does not verify the
//! server's certificate (real servers commonly have self-signed ones); it checks the service.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::{Arc, OnceLock};

use md5::{Digest, Md5};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::ProbeError;
use crate::config::check::{CheckCommon, HttpCheck};

/// Largest response read; a health page bigger than this fails the check.
const MAX_RESPONSE: usize = 4 << 20;

#[derive(Debug)]
pub(crate) struct UrlProbe {
    path: String,
    host: String,
    digest: Option<String>,
    status: Vec<RangeInclusive<u16>>,
    regex: Option<Result<regex::bytes::Regex, String>>,
    regex_no_match: bool,
}

/// A prepared HTTP_GET / SSL_GET.
#[derive(Debug)]
pub(crate) struct HttpProbe {
    pub(crate) tls: bool,
    urls: Vec<UrlProbe>,
    /// TLS server name: SNI when a DNS name, none for an address.
    server_name: ServerName<'static>,
    version: &'static str,
}

fn host_header(target: SocketAddr, tls: bool) -> String {
    let default_port = if tls { 443 } else { 80 };
    let ip = match target {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    if target.port() == default_port {
        ip
    } else {
        format!("{ip}:{}", target.port())
    }
}

impl HttpProbe {
    pub(crate) fn new(h: HttpCheck, target: SocketAddr) -> HttpProbe {
        let urls = h
            .urls
            .into_iter()
            .map(|u| UrlProbe {
                host: u.virtualhost.clone().or_else(|| h.virtualhost.clone()).unwrap_or_else(|| host_header(target, h.tls)),
                regex: u.regex.as_ref().map(|r| regex::bytes::Regex::new(r).map_err(|e| format!("bad regex '{r}': {e}"))),
                path: u.path,
                digest: u.digest,
                status: u.status_codes,
                regex_no_match: u.regex_no_match,
            })
            .collect();
        let sni = h.sni_server_name.clone().or_else(|| if h.enable_sni { h.virtualhost.clone() } else { None });
        let server_name = sni
            .and_then(|n| ServerName::try_from(n).ok())
            .unwrap_or_else(|| ServerName::IpAddress(target.ip().into()));
        let version = match h.http_protocol.as_deref() {
            Some("1.1") => "1.1",
            _ => "1.0",
        };
        HttpProbe { tls: h.tls, urls, server_name, version }
    }

    pub(super) async fn check(&self, target: SocketAddr, c: &CheckCommon) -> Result<(), ProbeError> {
        for u in &self.urls {
            // connect_timeout bounds each whole request, like a per-I/O timeout would roughly.
            match tokio::time::timeout(c.connect_timeout, self.fetch(u, target, c)).await {
                Ok(Ok(resp)) => u.verify(&resp)?,
                Ok(Err(e)) => return Err(e.context(format_args!("GET {}", u.path))),
                Err(_) => return Err(format!("GET {}: timed out after {:?}", u.path, c.connect_timeout).into()),
            }
        }
        Ok(())
    }

    async fn fetch(&self, u: &UrlProbe, target: SocketAddr, c: &CheckCommon) -> Result<Response, ProbeError> {
        let tcp = super::net::connect(target, c).await.map_err(|e| ProbeError::io("", e))?;
        let req = format!(
            "GET {} HTTP/{}\r\nHost: {}\r\nUser-Agent: hav-check\r\nConnection: close\r\n\r\n",
            u.path, self.version, u.host
        );
        if self.tls {
            let conn = tokio_rustls::TlsConnector::from(tls_config());
            let mut s = conn.connect(self.server_name.clone(), tcp).await.map_err(|e| format!("TLS handshake: {e}"))?;
            Ok(exchange(&mut s, req.as_bytes()).await?)
        } else {
            let mut s = tcp;
            let r = exchange(&mut s, req.as_bytes()).await;
            super::net::reset(s);
            Ok(r?)
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, req: &[u8]) -> Result<Response, String> {
    s.write_all(req).await.map_err(|e| format!("send: {e}"))?;
    s.flush().await.map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let mut head_done = false;
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            // Servers often close TLS without close_notify; what was read is the response.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(format!("receive: {e}")),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(format!("response larger than {MAX_RESPONSE} bytes"));
        }
        // Stop early once the body is complete (servers that keep the connection open): parse
        // only when the new bytes may have completed the head or the body, so a large body
        // costs linear time.
        let tail = &buf[buf.len().saturating_sub(n + 4)..];
        if find(tail, b"\r\n\r\n").is_some() || head_done {
            match Response::parse_head(&buf) {
                Some((_, Some(total))) if buf.len() >= total => return Response::parse(&buf).ok_or_else(|| "malformed HTTP response".into()),
                Some(_) => head_done = true,
                None => {}
            }
        }
    }
    let r = Response::parse(&buf).ok_or_else(|| "malformed HTTP response".to_string())?;
    Ok(r)
}

/// A parsed HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    status: u16,
    body: Vec<u8>,
}

fn find(h: &[u8], needle: &[u8]) -> Option<usize> {
    h.windows(needle.len()).position(|w| w == needle)
}

impl Response {
    /// (status, total length of head and body when a Content-Length gives it) once the head of
    /// `buf` is complete.
    fn parse_head(buf: &[u8]) -> Option<(u16, Option<usize>)> {
        let end = find(buf, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&buf[..end]).ok()?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        let len = head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
        });
        let chunked = head.split("\r\n").any(|l| {
            l.split_once(':').is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked"))
        });
        Some((status, if chunked { None } else { len.map(|l| end + 4 + l) }))
    }

    /// Parses a whole response; `None` when the head is incomplete or the status line is not
    /// HTTP. A chunked body that does not decode is kept as read.
    fn parse(buf: &[u8]) -> Option<Response> {
        let end = find(buf, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&buf[..end]).ok()?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next()?;
        let mut parts = status_line.split_whitespace();
        if !parts.next()?.starts_with("HTTP/") {
            return None;
        }
        let status: u16 = parts.next()?.parse().ok()?;
        let mut length = None;
        let mut chunked = false;
        for l in lines {
            let Some((k, v)) = l.split_once(':') else { continue };
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse::<usize>().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
        let raw = &buf[end + 4..];
        if chunked {
            return Some(match dechunk(raw) {
                Some(body) => Response { status, body },
                None => Response { status, body: raw.to_vec() },
            });
        }
        Some(match length {
            Some(n) if raw.len() >= n => Response { status, body: raw[..n].to_vec() },
            _ => Response { status, body: raw.to_vec() },
        })
    }
}

/// Decodes a complete chunked body; `None` while incomplete or malformed.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = find(raw, b"\r\n")?;
        let size_txt = std::str::from_utf8(&raw[..eol]).ok()?;
        let size = usize::from_str_radix(size_txt.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        if raw.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

impl UrlProbe {
    fn verify(&self, r: &Response) -> Result<(), String> {
        let status_ok = if self.status.is_empty() {
            (200..=299).contains(&r.status)
        } else {
            self.status.iter().any(|s| s.contains(&r.status))
        };
        if !status_ok {
            return Err(format!("GET {}: status {}", self.path, r.status));
        }
        if let Some(want) = &self.digest {
            let got: String = Md5::digest(&r.body).iter().map(|b| format!("{b:02x}")).collect();
            if &got != want {
                return Err(format!("GET {}: digest {got}, expected {want}", self.path));
            }
        }
        if let Some(re) = &self.regex {
            let re = re.as_ref().map_err(Clone::clone)?;
            let matched = re.is_match(&r.body);
            if matched == self.regex_no_match {
                let what = if self.regex_no_match { "matches" } else { "does not match" };
                return Err(format!("GET {}: body {what} regex '{}'", self.path, re.as_str()));
            }
        }
        Ok(())
    }
}

/// Accepts any certificate; the handshake signatures are still checked, so the peer holds the
/// key of the certificate it sent.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS client of the checkers and of policy host calls: any certificate is accepted (as
/// keepalived's SSL_GET does), handshake signatures are still verified.
pub(crate) fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                // ring's default provider has suites for both default versions.
                .expect("ring provider supports TLS 1.2 and 1.3")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
                .with_no_client_auth();
            Arc::new(cfg)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_content_length() {
        let r = Response::parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef").expect("parsed");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abc"[..]));
        assert_eq!(Response::parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab"), Some((200, Some(41))));
    }

    #[test]
    fn test_parse_chunked() {
        let r = Response::parse(b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").expect("parsed");
        assert_eq!((r.status, r.body.as_slice()), (503, &b"abcde"[..]));
        assert!(Response::parse(b"garbage\r\n\r\n").is_none());
    }
}
