//! Container mode: a throw-away container of an image through `testcontainers`, on a fixed
//! mapped loopback port, ready when Redis logs its ready line and answers `PING`.

use std::net::SocketAddr;

use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

use super::RedisServer;
use super::probe::{docker_answers, docker_endpoint};
use super::process::free_port;
use super::ready::{not_ready, wait_ready};
use super::{Backend, CONTAINER_START_TIMEOUT, PROCESS_READY_TIMEOUT, ProvisionError, READY_LINE};

/// `name:tag` split for `GenericImage`; a colon inside a registry host (`host:5000/x`) is
/// not a tag separator.
pub(super) fn split_image(image: &str) -> (&str, &str) {
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => (&image[..i], &image[i + 1..]),
        _ => (image, "latest"),
    }
}

pub(super) async fn start_container(image: String) -> Result<RedisServer, ProvisionError> {
    if !docker_answers() {
        return Err(ProvisionError::DockerUnavailable {
            endpoint: docker_endpoint().describe(),
        });
    }
    let fail = |reason: String| ProvisionError::Container {
        image: image.clone(),
        reason,
    };
    let (name, tag) = split_image(&image);
    // A fixed host port, so that a restarted container (fault tests) keeps its address.
    let host_port = free_port().map_err(|e| fail(format!("no free loopback port: {e}")))?;
    let request = GenericImage::new(name, tag)
        .with_exposed_port(6379.tcp())
        .with_wait_for(WaitFor::message_on_stdout(READY_LINE))
        .with_mapped_port(host_port, 6379.tcp())
        .with_startup_timeout(CONTAINER_START_TIMEOUT);
    let container = tokio::time::timeout(CONTAINER_START_TIMEOUT, request.start())
        .await
        .map_err(|_| fail(format!("no ready line within {CONTAINER_START_TIMEOUT:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    let port = container
        .get_host_port_ipv4(6379)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let url = format!("redis://{addr}");
    wait_ready(addr, PROCESS_READY_TIMEOUT, || true)
        .await
        .map_err(|reason| not_ready(&url, reason))?;
    Ok(RedisServer::new(
        url,
        String::new(),
        Backend::Container {
            _container: Box::new(container),
            image,
        },
    ))
}
