//! A real HTTP server on 127.0.0.1 for hook and notification tests: it records every request
//! (headers and body) and answers from a script of (status, delay, body).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Seen {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

#[derive(Clone)]
struct Shared {
    script: Arc<Mutex<VecDeque<(u16, Duration, String)>>>,
    last: (u16, Duration, String),
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A running scripted server.
pub struct Scripted {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Scripted {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(s): State<Shared>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    s.seen.lock().expect("lock").push(Seen {
        path: uri.path().to_owned(),
        headers,
        body,
        at: Instant::now(),
    });
    let next = s.script.lock().expect("lock").pop_front();
    let (status, delay, text) = next.unwrap_or_else(|| s.last.clone());
    tokio::time::sleep(delay).await;
    (StatusCode::from_u16(status).expect("valid status"), text)
}

/// Serve `script` in order, then repeat its last entry.
pub async fn serve(script: Vec<(u16, Duration, &str)>) -> Scripted {
    let script: VecDeque<_> = script
        .into_iter()
        .map(|(s, d, b)| (s, d, b.to_owned()))
        .collect();
    let last = script
        .back()
        .cloned()
        .unwrap_or((200, Duration::ZERO, String::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shared = Shared {
        script: Arc::new(Mutex::new(script)),
        last,
        seen: seen.clone(),
    };
    let app = Router::new().fallback(any(handle)).with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Scripted {
        url: format!("http://{addr}/hook"),
        seen,
        task,
    }
}

/// An address on loopback where nothing listens (bound, then closed).
pub async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}/hook")
}
