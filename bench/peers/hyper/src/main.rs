//! hyper's twin of examples/hello.c, the Rust peer for bench/run.py: GET /,
//! GET /json, GET /users/{id} and POST /echo on one current_thread tokio
//! runtime (one thread, as every contender gets). Keep-alive and pipelining
//! are hyper's defaults; SIGTERM or SIGINT ends it with exit status 0.
//!
//! Run: hyper-peer [PORT]   (else $PORT, else 8080; listens on 127.0.0.1)
use std::convert::Infallible;
use std::net::SocketAddr;

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Method, Request, Response, Server, StatusCode};
use tokio::signal::unix::{signal, SignalKind};

static TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain");
static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
static OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");

fn answer(status: StatusCode, content_type: HeaderValue, body: Body) -> Response<Body> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, content_type);
    res
}

fn json(value: serde_json::Value) -> Response<Body> {
    let body = serde_json::to_vec(&value).expect("a JSON value always serializes");
    answer(StatusCode::OK, APPLICATION_JSON.clone(), Body::from(body))
}

async fn route(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let method = req.method();
    let path = req.uri().path();
    if method == Method::GET {
        if path == "/" {
            return Ok(answer(StatusCode::OK, TEXT_PLAIN.clone(), Body::from("Hello, World!")));
        }
        if path == "/json" {
            return Ok(json(serde_json::json!({ "message": "Hello, World!" })));
        }
        // /users/{id}: one segment, raw (not percent-decoded), as turbo's capture.
        if let Some(id) = path.strip_prefix("/users/") {
            if !id.is_empty() && !id.contains('/') {
                return Ok(json(serde_json::json!({ "id": id })));
            }
        }
    } else if method == Method::POST && path == "/echo" {
        let content_type = req.headers().get(CONTENT_TYPE).cloned().unwrap_or(OCTET_STREAM.clone());
        return Ok(match hyper::body::to_bytes(req.into_body()).await {
            Ok(body) => answer(StatusCode::OK, content_type, Body::from(body)),
            Err(_) => answer(StatusCode::BAD_REQUEST, TEXT_PLAIN.clone(), Body::from("Bad Request")),
        });
    }
    Ok(answer(StatusCode::NOT_FOUND, TEXT_PLAIN.clone(), Body::from("Not Found")))
}

fn port() -> u16 {
    let given = std::env::args().nth(1).or_else(|| std::env::var("PORT").ok());
    match given {
        None => 8080,
        Some(text) => text.parse().unwrap_or_else(|_| {
            eprintln!("hyper-peer: not a port: {text:?}");
            std::process::exit(2)
        }),
    }
}

fn main() {
    let addr = SocketAddr::from(([127, 0, 0, 1], port()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
        let server = match Server::try_bind(&addr) {
            Ok(builder) => builder
                .tcp_nodelay(true)
                .http1_only(true)
                .serve(make_service_fn(|_conn| async { Ok::<_, Infallible>(service_fn(route)) })),
            Err(err) => {
                eprintln!("hyper-peer: cannot listen on {addr}: {err}");
                std::process::exit(1)
            }
        };
        // The first stop signal returns from block_on; dropping the runtime
        // then drops the listener and every connection.
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            ended = server => {
                eprintln!("hyper-peer: server ended: {ended:?}");
                std::process::exit(1);
            }
        }
    });
    drop(runtime);
}
