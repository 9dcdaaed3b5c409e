//! Protocol upgrades (WebSocket): once the upstream answers 101, bytes are
//! relayed both ways until either side closes. Tunnels are tracked tasks,
//! so a graceful stop knows about them.

use blastdoor_types::ErrorCode;
use http::Response;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::Gateway;
use crate::ctx::RequestCtx;
use crate::error::GatewayError;

pub fn tunnel(
    gw: &Gateway,
    ctx: &RequestCtx,
    client: Option<OnUpgrade>,
    upstream_resp: &mut Response<Incoming>,
) -> Result<(), GatewayError> {
    let Some(client) = client else {
        return Err(GatewayError::new(
            ErrorCode::UpstreamUnavailable,
            "the upstream switched protocols without being asked to",
        ));
    };
    let upstream = hyper::upgrade::on(upstream_resp);
    let request_id = ctx.request_id.clone();
    gw.tracker.spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(%request_id, error = %e, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            tracing::debug!(%request_id, error = %e, "upgraded connection closed with an error");
        }
    });
    Ok(())
}
