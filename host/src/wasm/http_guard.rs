//! wasi:http for one plugin: a request goes out only when one of the
//! plugin's `permissions.http` grants allows its destination and method;
//! any other is refused and reported as a denial.

use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use super::denials::Denials;
use super::permissions::HttpGrant;

/// wasi:http for one plugin: requests go out only to its grants.
pub struct HttpHooks {
    pub(crate) grants: Vec<HttpGrant>,
    pub(crate) denials: Arc<Denials>,
}

type ResponseIo = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;
type SendFuture = Box<
    dyn Future<Output = wasmtime_wasi_http::Result<(http::Response<WasiBody>, ResponseIo)>> + Send,
>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: ResponseIo,
    ) -> SendFuture {
        drop(fut);
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let method = request.method().as_str();
        if !self.grants.iter().any(|g| g.allows(host, port, method)) {
            self.denials
                .deny(&format!("send {method} {uri}"), "permissions.http");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as ResponseIo,
            ))
        })
    }
}
