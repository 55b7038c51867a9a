//! Every user's read once, on a server whose caches are empty: what the inbox reads cost
//! before anything is cached, measured by a client of our own because wrk cannot stop after
//! a set of requests (its rate is always over the whole `--duration`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{COOKIE, HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::util::{Result, quantile};
use crate::wrk::Measurement;

/// `GET path` once with each of `tokens`' session cookies, over `connections` keep-alive
/// connections that each take the next token as soon as their last reply is read; every reply
/// must be 200.
pub fn measure(
    server: SocketAddr,
    path: &str,
    tokens: Arc<Vec<String>>,
    connections: u32,
) -> Result<Measurement> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the load client: {e}"))?;
    runtime.block_on(async {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let workers: Vec<_> = (0..connections)
            .map(|_| {
                let (next, tokens, path) = (next.clone(), tokens.clone(), path.to_owned());
                tokio::spawn(async move { worker(server, &path, &tokens, &next).await })
            })
            .collect();
        let mut latencies = Vec::with_capacity(tokens.len());
        for worker in workers {
            latencies.extend(
                worker
                    .await
                    .map_err(|e| format!("a load connection: {e}"))??,
            );
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let p = |q| quantile(&latencies, q).unwrap_or(Duration::MAX);
        Ok(Measurement {
            requests: latencies.len() as u64,
            requests_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: p(0.5),
            p99: p(0.99),
            non_2xx: 0,
            socket_errors: 0,
            socket_errors_text: None,
        })
    })
}

/// One connection's share: the latency of each of its requests.
async fn worker(
    server: SocketAddr,
    path: &str,
    tokens: &[String],
    next: &AtomicUsize,
) -> Result<Vec<Duration>> {
    let fail = |e: &dyn std::fmt::Display| format!("GET http://{server}{path}: {e}");
    let stream = TcpStream::connect(server).await.map_err(|e| fail(&e))?;
    stream.set_nodelay(true).map_err(|e| fail(&e))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| fail(&e))?;
    tokio::spawn(connection);
    let mut latencies = Vec::new();
    loop {
        let Some(token) = tokens.get(next.fetch_add(1, Ordering::Relaxed)) else {
            return Ok(latencies);
        };
        let request = Request::get(path)
            .header(HOST, server.to_string())
            .header(COOKIE, format!("tidings_session={token}"))
            .body(Empty::<Bytes>::new())
            .map_err(|e| fail(&e))?;
        let sent = Instant::now();
        sender.ready().await.map_err(|e| fail(&e))?;
        let response = sender.send_request(request).await.map_err(|e| fail(&e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(&e))?
            .to_bytes();
        latencies.push(sent.elapsed());
        if status != 200 {
            return Err(fail(&format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
    }
}
